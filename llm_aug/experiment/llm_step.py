"""One LLM step: zero-/few-shot classification of the eval split (or a fixed subset of it)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE
from llm_aug.core.manifest import write_manifest
from llm_aug.core.progress import is_quiet
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.experiment.step import Step, StepSkipped, classify_config
from llm_aug.experiment.step import llm_system as _system
from llm_aug.experiment.train_filter import filter_split, filter_train
from llm_aug.llm import build_runner, load_llm_config
from llm_aug.llm.types import RunAborted
from llm_aug.prompting.classify import classify_dataset

log = logging.getLogger(__name__)


def subset(data: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` posts by id (ids are text hashes, so a stable pseudo-random pick).

    Every LLM system and seed with the same limit scores the same posts, so they pair.
    """
    if limit is None or limit >= len(data):
        return data
    keep = set(sorted(data.ids)[:limit])
    rows = [r for r in data.rows if r.id in keep]
    return Dataset(rows, path=data.path, scheme=data.scheme, meta={**data.meta, "subset": limit})


def _runner(step: Step, cache_path: Path) -> Any:
    """A runner over the system's backend; an unusable backend skips the step."""
    s = _system(step)
    llm = load_llm_config({"backend": s.backend, "runner": {
        "quiet": is_quiet(), **s.runner, "cache_path": str(cache_path)}})
    try:
        return build_runner(llm), llm
    except (UserError, ImportError, ValueError, OSError) as exc:
        raise StepSkipped(f"LLM backend unavailable: {' '.join(str(exc).split())}") from None


def _classify_val(step: Step, val: tuple[Path, Path], runner: Any, cfg: Any, train: Dataset | None) -> dict:
    """Classify val (the system's ``limit`` applies) into ``val[1]``; its usage."""
    scheme = scheme_for_task(step.task)
    data = subset(load_dataset(val[0], scheme), _system(step).limit)
    return classify_dataset(data, scheme, runner, cfg, val[1], train=train).to_manifest()


def run_llm(step: Step, eval_path: Path, work: Path, cache_path: Path,
            eval_split: str = "val", original_path: Path | None = None,
            val: tuple[Path, Path] | None = None) -> tuple[dict[str, Any], Dataset]:
    """Classify the eval posts into ``work/predictions.jsonl``; return usage/timing and the gold.

    On the test split the exemplars' training set first loses its copies of test posts.
    ``val`` = (val file, output) also classifies val (the same ``limit``) for a screening profile.
    """
    scheme = scheme_for_task(step.task)
    full = load_dataset(eval_path, scheme)
    gold = subset(full, _system(step).limit)
    train = load_dataset(step.train_path, scheme) if step.train_path and _system(step).shots else None
    filtered = None
    if train is not None and filter_split(eval_split):
        original = load_dataset(original_path, scheme) if original_path else None
        train, filtered = filter_train(train, full, eval_split, original)
    cfg = classify_config(step)
    runner, llm = _runner(step, cache_path)
    t0 = time.perf_counter()
    try:
        summary = classify_dataset(gold, scheme, runner, cfg, work / PREDICTIONS_FILE, train=train)
    except RunAborted as exc:  # unreachable server, rejected key or model: skip, as an unbuildable backend
        raise StepSkipped(f"LLM backend unavailable: {' '.join(str(exc).split())}") from None
    seconds = time.perf_counter() - t0
    if summary.n_ok == 0:
        raise StepSkipped(f"LLM backend answered none of {summary.n_items} requests "
                          f"(errors: {summary.errors or 'none recorded'})")
    usage = summary.to_manifest()
    val_usage = _classify_val(step, val, runner, cfg, train) if val is not None else None
    read = [eval_path] + ([val[0]] if val is not None else []) + ([step.train_path] if train else [])
    write_manifest(work, "experiment-classify", data_files=read,
                   seed=step.seed, name="classify.manifest.json",
                   config={"task": step.task, "classify": cfg.model_dump(), "llm": llm.model_dump(mode="json")},
                   extra={"usage": usage})
    log.info("%s: %d/%d answered, %d prompt + %d completion tokens", step.id, summary.n_ok,
             summary.n_items, summary.prompt_tokens, summary.completion_tokens)
    extra = {"timing": {"fit_seconds": 0.0, "predict_seconds": round(seconds, 3)}, "usage": usage,
             "subset": _system(step).limit, "n_train": len(train) if train else 0}
    if filtered is not None:
        extra["train_filter"] = filtered
    if val_usage is not None:
        extra["val_usage"] = val_usage  # the val posts classified for screening (not in the cost table)
    return extra, gold
