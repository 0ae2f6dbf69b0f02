"""Run the step matrix: cached steps are reused, each new step is written atomically.

Layout of ``OUT``::

    run.json                      the last run: every step's status, reason, key, seconds
    manifest.json                 versions, config, data files and their sha256
    cache/llm.sqlite              LLM request cache (survives recomputed steps)
    results/TASK/SYSTEM/TRAIN_SET/sSEED/
        results.json confusion.png predictions.jsonl step.json [model/]
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE, atomic_write_text
from llm_aug.core.manifest import scrub, write_manifest
from llm_aug.core.progress import progress
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.results import RESULTS_FILE, score_predictions, write_results
from llm_aug.experiment.config import ORIGINAL, LLMSystem
from llm_aug.experiment.matrix import FileHashes, expand, key_inputs, select, step_key
from llm_aug.experiment.resolve import ResolvedConfig
from llm_aug.experiment.screening_step import (
    VAL_PREDICTIONS_FILE,
    needs_val_predictions,
    screen_step,
    screening_manifest,
    settings_for,
)
from llm_aug.experiment.step import Step, StepSkipped

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
STEP_FILE = "step.json"
RESULTS_DIR = "results"
STATUSES = ("computed", "cached", "skipped", "failed", "not-selected", "to-compute")


@dataclass
class StepStatus:
    """What happened to one step in this run."""

    id: str
    label: str
    task: str
    system: str
    kind: str
    train_set: str
    seed: int
    status: str
    key: str
    reason: str | None = None
    seconds: float | None = None


def step_dir(out: Path, step: Step) -> Path:
    """Where a step's results live."""
    return out / RESULTS_DIR / step.id


def is_cached(folder: Path, key: str) -> bool:
    """True when ``folder`` holds finished results computed from exactly these inputs."""
    meta = folder / STEP_FILE
    if not (meta.is_file() and (folder / RESULTS_FILE).is_file()):
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def _binary_gold(step: Step, res: ResolvedConfig, gold: Dataset) -> Dataset | None:
    path = res.binary_gold.get(step.task)
    if path is None:
        return None
    data = load_dataset(path, scheme_for_task("binary"))
    return data if set(gold.ids) <= set(data.ids) else None


def _evaluate(step: Step, res: ResolvedConfig, work: Path, gold: Dataset, extra: dict[str, Any]) -> None:
    scheme = scheme_for_task(step.task)
    results = score_predictions(work / PREDICTIONS_FILE, gold, scheme, binary_gold=_binary_gold(step, res, gold),
                       n_boot=res.config.n_boot)
    system = step.system
    results.update(
        predictions=PREDICTIONS_FILE, step=step.id, kind=system.kind, train_set=step.train_set,
        train_file=str(step.train_path) if step.train_path else None, seed=step.seed,
        eval_split=res.config.eval_split,
        method=getattr(system, "method", None),
        backend=scrub(system.backend) if isinstance(system, LLMSystem) else None, **extra)
    write_results(work, results, scheme, name=step.label)


def _screen(step: Step, res: ResolvedConfig, work: Path, gold: Dataset, extra: dict[str, Any]) -> None:
    """The step's risk screening (``screening:`` in the config), into ``extra["screening"]``."""
    settings = settings_for(step, res.config)
    if settings is None:
        return
    split = res.config.eval_split
    val = None if split == "val" else load_dataset(res.val_files[step.task], scheme_for_task(step.task))
    if val is not None and isinstance(step.system, LLMSystem):
        from llm_aug.experiment.llm_step import subset

        val = subset(val, step.system.limit)
    extra["screening"] = screen_step(step, settings, work, gold, val, split, res.config.n_boot)


def _swap(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (renames only, so no reader sees a half-written folder)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _write_step_file(folder: Path, step: Step, key: str, inputs: dict) -> None:
    """``step.json``: the cache key and what it hashed (written last: it marks the step done)."""
    system = dict(inputs["system"])
    if "backend" in system:
        # An api_key written into the backend settings must not land on disk (the key hashed it).
        system["backend"] = scrub(system["backend"])
    meta = {"key": key, "inputs": {**inputs, "system": system}, "id": step.id, "label": step.label,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(folder / STEP_FILE, json.dumps(meta, indent=2, ensure_ascii=False))


def _compute(step: Step, res: ResolvedConfig, out: Path, key: str, inputs: dict) -> None:
    """Run one step into a temp folder beside its final place, then rename it there."""
    from llm_aug.experiment.classifier_step import run_classifier
    from llm_aug.experiment.llm_step import run_llm

    final = step_dir(out, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        original = res.train_files[step.task].get(ORIGINAL)
        val_preds = tmp / VAL_PREDICTIONS_FILE if needs_val_predictions(step, res.config) else None
        if isinstance(step.system, LLMSystem):
            extra, gold = run_llm(step, res.eval_files[step.task], tmp, out / "cache" / "llm.sqlite",
                                  res.config.eval_split, original,
                                  val=(res.val_files[step.task], val_preds) if val_preds else None)
        else:
            extra, gold = run_classifier(step, res.val_files[step.task], res.eval_files[step.task], tmp,
                                         res.config.eval_split, original, val_predictions=val_preds)
        _screen(step, res, tmp, gold, extra)
        _evaluate(step, res, tmp, gold, extra)
        _write_step_file(tmp, step, key, inputs)
        _swap(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _status(step: Step, status: str, key: str, **kw: Any) -> StepStatus:
    return StepStatus(step.id, step.label, step.task, step.system.name, step.system.kind,
                      step.train_set, step.seed, status, key, **kw)


def _run_one(step: Step, res: ResolvedConfig, out: Path, key: str, inputs: dict) -> StepStatus:
    t0 = time.perf_counter()
    try:
        _compute(step, res, out, key, inputs)
    except StepSkipped as exc:
        log.warning("%s: skipped: %s", step.id, exc)
        return _status(step, "skipped", key, reason=str(exc))
    except Exception as exc:  # one broken step must not stop the matrix
        log.debug("%s failed", step.id, exc_info=True)
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        log.error("%s: failed: %s", step.id, reason)
        return _status(step, "failed", key, reason=reason, seconds=round(time.perf_counter() - t0, 1))
    return _status(step, "computed", key, seconds=round(time.perf_counter() - t0, 1))


def plan(res: ResolvedConfig, out: Path, only: str | None = None) -> list[tuple[Step, str, dict, str]]:
    """(step, key, key inputs, planned status) for every step: cached, to-compute or not-selected."""
    hashes = FileHashes()
    steps = expand(res)
    chosen_steps = select(steps, only)
    if only and not any(chosen_steps):
        raise UserError(f"--only {only!r} matches no step; step ids look like {steps[0].id if steps else '?'}")
    rows = []
    for step, chosen in zip(steps, chosen_steps):
        inputs = key_inputs(step, res, hashes)
        key = step_key(step, res, hashes)
        status = "cached" if is_cached(step_dir(out, step), key) else "to-compute" if chosen else "not-selected"
        rows.append((step, key, inputs, status))
    return rows


def _write_run(out: Path, res: ResolvedConfig, statuses: list[StepStatus], started: float) -> dict:
    counts = {s: sum(st.status == s for st in statuses) for s in STATUSES if s != "to-compute"}
    run = {"config": str(res.path.resolve()), "name": res.name, "eval_split": res.config.eval_split,
           "data_dir": str(res.data_dir), "n_boot": res.config.n_boot,
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "wall_seconds": round(time.perf_counter() - started, 1), "counts": counts,
           "steps": [asdict(s) for s in statuses]}
    atomic_write_text(out / RUN_FILE, json.dumps(run, indent=2, ensure_ascii=False))
    return run


def run_experiment(res: ResolvedConfig, out: str | Path, *, only: str | None = None) -> dict:
    """Compute every selected step that is not cached; write ``run.json``; return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    planned = plan(res, out, only)
    files = sorted({p for p in [*res.val_files.values(), *res.eval_files.values(), *res.binary_gold.values(),
                                *(p for sets in res.train_files.values() for p in sets.values())]})
    write_manifest(out, "experiment run", data_files=files, config=res.config.model_dump(mode="json"),
                   extra=screening_manifest(res))
    statuses: list[StepStatus] = []
    todo = sum(status == "to-compute" for *_, status in planned)
    log.info("%d steps: %d to compute, %d cached", len(planned), todo,
             sum(status == "cached" for *_, status in planned))
    for step, key, inputs, status in progress(planned, desc="experiment steps"):
        if status == "to-compute":
            log.info("computing %s", step.id)
            statuses.append(_run_one(step, res, out, key, inputs))
        else:
            statuses.append(_status(step, status, key))
        _write_run(out, res, statuses, started)
    return _write_run(out, res, statuses, started)
