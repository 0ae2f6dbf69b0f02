"""Training loop of :class:`~llm_aug.classifiers.bert.BertClassifier`: epochs, early stopping, checkpoints."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from llm_aug.classifiers.bert_data import collate, predict_batches, train_batches
from llm_aug.core.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class StepContext:
    """Everything a forward/backward pass needs besides the model and the data."""

    device: torch.device
    precision: str
    pad_id: int
    width: int | None  # None: dynamic padding
    batch_size: int
    grad_accum_steps: int
    max_grad_norm: float
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    bucket: bool
    progress: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for ``precision`` (fp32: no autocast)."""
        if self.precision == "fp32" or (self.precision == "fp16" and self.device.type != "cuda"):
            return contextlib.nullcontext()  # a model loaded onto the CPU runs fp16 ones in fp32
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def to_device(self, rows: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in collate(rows, self.pad_id, self.width).items()}


@dataclass
class FitState:
    """Mutable training state; everything in it goes into a checkpoint."""

    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any  # torch.amp.GradScaler for fp16 on CUDA, else None
    rng: np.random.Generator
    epoch: int = 0  # epochs completed
    history: list[dict] = field(default_factory=list)
    best_score: tuple | None = None  # compared lexicographically; higher is better
    best_epoch: int | None = None
    best_state: dict | None = None
    bad_epochs: int = 0
    stopped: bool = False
    meta: dict = field(default_factory=dict)  # what the run trains on; a resume must match it


def make_optimizer(model: Any, lr: float, weight_decay: float, total_steps: int, warmup_ratio: float):
    """AdamW (no decay on biases and LayerNorm) with linear warmup then linear decay."""
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    warmup = round(warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def predict_logits(model: Any, rows: Sequence[Sequence[int]], ctx: StepContext) -> np.ndarray:
    """float32 logits in input order (batches go in length order to pad little)."""
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode():
        for idx in predict_batches([len(r) for r in rows], ctx.batch_size):
            with ctx.autocast():
                logits = model(**ctx.to_device([rows[i] for i in idx])).logits
            if out is None:
                out = np.empty((len(rows), logits.shape[-1]), dtype=np.float32)
            out[idx] = logits.float().cpu().numpy()
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def _optimizer_step(state: FitState, ctx: StepContext) -> None:
    if state.scaler is not None:
        state.scaler.unscale_(state.optimizer)  # clip the true gradients, not scaled ones
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), ctx.max_grad_norm)
    if state.scaler is not None:
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)


def train_epoch(state: FitState, ctx: StepContext, rows: Sequence[Sequence[int]], y: np.ndarray) -> float:
    """One pass over the training rows; returns the mean (unscaled) training loss."""
    state.model.train()
    batches = train_batches([len(r) for r in rows], ctx.batch_size, state.rng, ctx.bucket)
    total = torch.zeros((), device=ctx.device)  # summed on device: no sync per step
    state.optimizer.zero_grad(set_to_none=True)
    bar = tqdm(batches, desc=f"epoch {state.epoch + 1}", disable=not ctx.progress, leave=False)
    for i, idx in enumerate(bar):
        target = torch.as_tensor(y[idx], device=ctx.device)
        with ctx.autocast():
            logits = state.model(**ctx.to_device([rows[j] for j in idx])).logits
        loss = ctx.loss_fn(logits.float(), target)
        scaled = loss / ctx.grad_accum_steps
        (state.scaler.scale(scaled) if state.scaler is not None else scaled).backward()
        total += loss.detach() * len(idx)
        if (i + 1) % ctx.grad_accum_steps == 0 or i + 1 == len(batches):
            _optimizer_step(state, ctx)
    return float(total.item()) / len(rows)


def _validate(state: FitState, ctx: StepContext, rows: Sequence[Sequence[int]], y: np.ndarray) -> dict:
    logits = predict_logits(state.model, rows, ctx)
    with torch.no_grad():
        loss = ctx.loss_fn(torch.from_numpy(logits).to(ctx.device), torch.as_tensor(y, device=ctx.device))
    f1 = f1_score(y, logits.argmax(axis=1), average="weighted", zero_division=0)
    return {"val_loss": float(loss.item()), "val_weighted_f1": float(f1)}


def _update_best(state: FitState, record: dict, metric: str | None, patience: int) -> None:
    """Remember the best epoch's weights (on CPU) and decide whether to stop (strict improvement)."""
    if metric is None:
        return
    # F1 on a small val set plateaus (e.g. while predicting one class), so val loss breaks ties.
    score = (-record["val_loss"],) if metric == "loss" else (record["val_weighted_f1"], -record["val_loss"])
    if state.best_score is None or score > tuple(state.best_score):
        state.best_score, state.best_epoch, state.bad_epochs = score, record["epoch"], 0
        state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()}
    else:
        state.bad_epochs += 1
        state.stopped = state.bad_epochs >= patience


def run_epochs(state: FitState, ctx: StepContext, train: tuple[list, np.ndarray], val: tuple[list, np.ndarray] | None,
               epochs: int, metric: str | None, patience: int, checkpoint_dir: str | Path | None) -> None:
    """Train from ``state.epoch`` to ``epochs`` (or an early stop), then restore the best weights."""
    while state.epoch < epochs and not state.stopped:
        _sync(ctx.device)
        t0 = time.perf_counter()
        train_loss = train_epoch(state, ctx, *train)
        _sync(ctx.device)
        seconds = time.perf_counter() - t0
        state.epoch += 1
        record = {"epoch": state.epoch, "train_loss": train_loss, "train_seconds": round(seconds, 4),
                  "examples_per_s": len(train[0]) / seconds, "lr": state.scheduler.get_last_lr()[0]}
        if val is not None:
            record.update(_validate(state, ctx, *val))
        state.history.append(record)
        _update_best(state, record, metric if val is not None else None, patience)
        log.info("epoch %d: %s", state.epoch, {k: round(v, 4) for k, v in record.items()})
        if checkpoint_dir is not None:
            save_checkpoint(Path(checkpoint_dir) / CHECKPOINT_FILE, state)
    if state.best_state is not None and state.best_epoch != state.epoch:
        log.info("restoring weights of best epoch %d", state.best_epoch)
        state.model.load_state_dict(state.best_state)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels are async: time the work, not the launches
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_states(state: FitState) -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "batches": state.rng.bit_generator.state}


def _set_rng_states(state: FitState, saved: dict) -> None:
    random.setstate(saved["python"])
    np.random.set_state(saved["numpy"])
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    state.rng.bit_generator.state = saved["batches"]


_SCALARS = ("epoch", "history", "best_score", "best_epoch", "best_state", "bad_epochs", "stopped")


def save_checkpoint(path: Path, state: FitState) -> None:
    """Write the whole training state atomically (a crash mid-write keeps the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {name: getattr(state, name) for name in _SCALARS}
    blob.update(meta=state.meta, model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
                scheduler=state.scheduler.state_dict(), rng=_rng_states(state),
                scaler=state.scaler.state_dict() if state.scaler is not None else None)
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, state: FitState) -> None:
    """Restore what :func:`save_checkpoint` wrote into ``state`` (model, optimizer, RNG...)."""
    # weights_only=False: the file holds RNG states and history, and it is our own file.
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if blob.get("meta") != state.meta:
        raise UserError(f"{path}: checkpoint is for another run ({blob.get('meta')}, now {state.meta}); "
                        "remove it or use another checkpoint_dir")
    state.model.load_state_dict(blob["model"])
    state.optimizer.load_state_dict(blob["optimizer"])
    state.scheduler.load_state_dict(blob["scheduler"])
    if state.scaler is not None and blob["scaler"] is not None:
        state.scaler.load_state_dict(blob["scaler"])
    for name in _SCALARS:
        setattr(state, name, blob[name])
    _set_rng_states(state, blob["rng"])
    log.info("resumed from %s after epoch %d", path, state.epoch)
