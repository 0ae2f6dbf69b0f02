"""Fine-tuned BERT as a scikit-learn estimator (the paper's Chinese BERT baselines).

``model_name_or_path`` is a local checkpoint directory or a Hugging Face hub id such as
``hfl/chinese-bert-wwm-ext``; :func:`build_tiny_bert` makes a random tiny one offline.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from llm_aug.classifiers import bert_train as bt
from llm_aug.classifiers.baselines import TextInputMixin
from llm_aug.classifiers.bert_data import PADDING_MODES, balanced_weights, encode
from llm_aug.classifiers.bert_load import load_pretrained, resolve_device
from llm_aug.classifiers.bert_tiny import build_tiny_bert
from llm_aug.core.errors import UserError
from llm_aug.core.progress import is_quiet

log = logging.getLogger(__name__)

__all__ = ["BertClassifier", "build_tiny_bert"]

CONFIG_FILE = "bert_config.json"
_CHOICES = {"class_weights": (None, "balanced"), "early_stopping": (None, "loss", "weighted_f1"),
            "device": ("auto", "cpu", "cuda"), "precision": ("fp32", "bf16", "fp16"), "padding": PADDING_MODES}


class BertClassifier(TextInputMixin, ClassifierMixin, BaseEstimator):
    """Fine-tune a BERT checkpoint for sequence classification; sklearn fit/predict/predict_proba.

    Early stopping (and restoring the best epoch's weights) needs ``X_val``/``y_val`` in
    :meth:`fit`. ``checkpoint_dir`` saves the full training state after every epoch and
    ``resume=True`` continues from it. Pickling works (weights travel inside the pickle);
    :meth:`save` / :meth:`load` write a normal ``save_pretrained`` directory instead.
    """

    def __init__(self, model_name_or_path: str | Path = "hfl/chinese-bert-wwm-ext", *,
                 local_files_only: bool | None = None, max_length: int = 150, batch_size: int = 16,
                 lr: float = 2e-5, epochs: int = 5, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                 grad_accum_steps: int = 1, max_grad_norm: float = 1.0, class_weights: str | None = None,
                 early_stopping: str | None = "weighted_f1", patience: int = 2, seed: int = 0,
                 device: str = "auto", precision: str = "fp32", padding: str = "dynamic",
                 length_bucketing: bool = True, labels: Sequence | None = None,
                 checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = True):
        self.model_name_or_path, self.local_files_only = model_name_or_path, local_files_only
        self.max_length, self.batch_size, self.lr, self.epochs = max_length, batch_size, lr, epochs
        self.warmup_ratio, self.weight_decay = warmup_ratio, weight_decay
        self.grad_accum_steps, self.max_grad_norm = grad_accum_steps, max_grad_norm
        self.class_weights, self.early_stopping, self.patience = class_weights, early_stopping, patience
        self.seed, self.device, self.precision = seed, device, precision
        self.padding, self.length_bucketing, self.labels = padding, length_bucketing, labels
        self.checkpoint_dir, self.resume, self.progress = checkpoint_dir, resume, progress

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Sequence[str], y: Sequence, X_val: Sequence[str] | None = None,
            y_val: Sequence | None = None) -> BertClassifier:
        """Fine-tune on ``X``/``y``; with ``X_val``/``y_val``, track val metrics and stop early."""
        self._check_params()
        if len(X) != len(y) or len(X) == 0:
            raise UserError(f"fit needs as many labels as texts (got {len(X)} texts, {len(y)} labels)")
        self._set_labels(y, y_val)
        bt.seed_everything(self.seed)
        self.device_ = resolve_device(self.device, self.precision)
        self.model_, self.tokenizer_ = load_pretrained(
            self.model_name_or_path, self.local_files_only, num_labels=len(self.classes_))
        self.model_.to(self.device_)
        train = (encode(self.tokenizer_, X, self.max_length), self._ids(y))
        val = None
        if X_val is not None and y_val is not None and len(X_val):
            val = (encode(self.tokenizer_, X_val, self.max_length), self._ids(y_val))
        ctx = self._context(train[1])
        state = self._fit_state(len(train[0]))
        self._maybe_resume(state)
        if val is None and self.early_stopping is not None:
            log.info("no X_val/y_val: training all %d epochs without early stopping", self.epochs)
        bt.run_epochs(state, ctx, train, val, self.epochs, self.early_stopping, self.patience, self.checkpoint_dir)
        self.history_, self.best_epoch_ = state.history, state.best_epoch or state.epoch
        self.model_.eval()
        return self

    def _maybe_resume(self, state: bt.FitState) -> None:
        if not self.resume:
            return
        ckpt = Path(self.checkpoint_dir) / bt.CHECKPOINT_FILE if self.checkpoint_dir else None
        if ckpt is not None and ckpt.is_file():
            bt.load_checkpoint(ckpt, state)  # a finished run's checkpoint just restores its result
        else:
            log.warning("resume=True but no checkpoint in checkpoint_dir=%s; training from scratch",
                        self.checkpoint_dir)

    def _check_params(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"BertClassifier: {name}={getattr(self, name)!r}; choose one of {allowed}")
        for name in ("max_length", "batch_size", "epochs", "grad_accum_steps", "patience"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"BertClassifier: {name} must be at least 1")

    def _set_labels(self, y: Sequence, y_val: Sequence | None) -> None:
        """``labels`` fixes the label set and its order; otherwise the sorted labels seen."""
        seen = list(y) + (list(y_val) if y_val is not None else [])
        classes = list(self.labels) if self.labels is not None else sorted(set(seen))
        unknown = sorted(set(seen) - set(classes), key=str)
        if unknown:
            raise UserError(f"labels {unknown} are not in labels={classes}")
        self.classes_ = np.asarray(classes)
        self.label_to_id_ = {label: i for i, label in enumerate(classes)}

    def _ids(self, y: Sequence) -> np.ndarray:
        return np.asarray([self.label_to_id_[v] for v in y], dtype=np.int64)

    def _context(self, y_ids: np.ndarray | None = None) -> bt.StepContext:
        weight = None
        if self.class_weights == "balanced" and y_ids is not None:
            weight = torch.tensor(balanced_weights(y_ids, len(self.classes_)), dtype=torch.float32,
                                  device=self.device_)
        return bt.StepContext(
            device=self.device_, precision=self.precision, pad_id=int(self.tokenizer_.pad_token_id),
            width=self.max_length if self.padding == "max_length" else None, batch_size=self.batch_size,
            grad_accum_steps=self.grad_accum_steps, max_grad_norm=self.max_grad_norm,
            loss_fn=torch.nn.CrossEntropyLoss(weight=weight), bucket=self.length_bucketing,
            progress=self.progress and not is_quiet())

    def _fit_state(self, n_train: int) -> bt.FitState:
        batches = -(-n_train // self.batch_size)
        steps = -(-batches // self.grad_accum_steps) * self.epochs
        optimizer, scheduler = bt.make_optimizer(self.model_, self.lr, self.weight_decay, steps, self.warmup_ratio)
        fp16_cuda = self.precision == "fp16" and self.device_.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if fp16_cuda else None
        meta = {"n_train": n_train, "classes": self.classes_.tolist(), "epochs": self.epochs,
                "batch_size": self.batch_size, "grad_accum_steps": self.grad_accum_steps}
        return bt.FitState(self.model_, optimizer, scheduler, scaler, np.random.default_rng(self.seed), meta=meta)

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Class probabilities, rows in input order, columns in ``classes_`` order."""
        self._check_fitted()
        if len(X) == 0:
            return np.empty((0, len(self.classes_)))
        logits = bt.predict_logits(self.model_, encode(self.tokenizer_, X, self.max_length), self._context())
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Most probable label per text, in input order."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)] if len(X) else self.classes_[:0]

    def _check_fitted(self) -> None:
        check_is_fitted(self, "model_", msg="BertClassifier is not fitted yet; call fit() or BertClassifier.load()")

    # ------------------------------------------------------------ persistence
    def save(self, out_dir: str | Path) -> Path:
        """Write model + tokenizer (``save_pretrained``) and ``bert_config.json`` to ``out_dir``."""
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(out)
        self.tokenizer_.save_pretrained(out)
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()}
        params["labels"] = list(params["labels"]) if params["labels"] is not None else None
        meta = {"format": 1, "params": params, "classes": self.classes_.tolist(),
                "history": self.history_, "best_epoch": self.best_epoch_}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=_jsonable),
                                       encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: str | Path, device: str | None = None) -> BertClassifier:
        """Restore an estimator written by :meth:`save` (optionally onto another ``device``)."""
        path = Path(model_dir)
        if not (path / CONFIG_FILE).is_file():
            raise UserError(f"{path}: not a saved BertClassifier (no {CONFIG_FILE})")
        meta = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        est = cls(**{**meta["params"], **({"device": device} if device else {})})
        est._restore(path, meta)
        return est

    def _restore(self, path: Path, meta: dict) -> None:
        self.classes_ = np.asarray(meta["classes"])
        self.label_to_id_ = {label: i for i, label in enumerate(self.classes_.tolist())}
        self.history_, self.best_epoch_ = meta["history"], meta["best_epoch"]
        self.device_ = resolve_device(self.device, self.precision, fallback_cpu=True)
        self.model_, self.tokenizer_ = load_pretrained(path, True, num_labels=len(self.classes_))
        self.model_.to(self.device_).eval()

    def __getstate__(self) -> dict:
        """Pickle the weights too: save to a temp dir and carry its files as bytes."""
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        if "model_" in state:
            with tempfile.TemporaryDirectory() as tmp:
                self.save(tmp)
                state["_saved_files"] = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
            for name in ("model_", "tokenizer_", "device_"):
                state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        files = state.pop("_saved_files", None)
        super().__setstate__(state)
        if files is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in files.items():
                    (Path(tmp) / name).write_bytes(data)
                self._restore(Path(tmp), json.loads(files[CONFIG_FILE]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
