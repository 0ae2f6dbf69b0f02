"""``train --dry-run`` and ``predict --dry-run``: what a run would do and cost, before it starts.

The plan loads the data and counts; it fits nothing, embeds only a few probe posts to
measure the embedder's rate (their vectors are not stored) and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_aug.classifiers.embed_cost import format_duration
from llm_aug.classifiers.frozen import plan_embedding
from llm_aug.classifiers.registry import DEFAULT_METHOD, build, get_method
from llm_aug.classifiers.store import load_model
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import Task, scheme_for_task
from llm_aug.jobs.train import MODEL_WRITES, SELECTION_SAMPLE, candidate_params, selection_note


def plan_training(task: Task | str, train_path: str | Path, val_path: str | Path, out_dir: str | Path, *,
                  method: str | None = None, seed: int = 0, load_kwargs: dict | None = None,
                  params: dict[str, Any] | None = None, probe: bool = True) -> dict[str, Any]:
    """What :func:`~llm_aug.jobs.train.train_model` would do: rows, candidates, selection, embedding."""
    check_outputs(out_dir=out_dir, inputs=(train_path, val_path), writes=MODEL_WRITES)
    scheme = scheme_for_task(task)
    spec = get_method(method or DEFAULT_METHOD[task])
    train = load_dataset(train_path, scheme, **(load_kwargs or {}))
    val = load_dataset(val_path, scheme, **(load_kwargs or {}))
    candidates = candidate_params(spec, params)
    sampled = len(candidates) > 1 and len(train) > SELECTION_SAMPLE
    estimator = build(spec, candidates[0], seed)
    plan = {"command": "train", "task": task, "method": spec.name, "train_rows": len(train),
            "val_rows": len(val), "candidates": len(candidates),
            "selection_sample": SELECTION_SAMPLE if sampled else None,
            "selection": selection_note(len(train), len(candidates)), "out": str(out_dir)}
    return {**plan, **_embedding(estimator, train.texts + val.texts, probe)}


def plan_prediction(model_dir: str | Path, input_path: str | Path, output_path: str | Path, *,
                    load_kwargs: dict | None = None, probe: bool = True) -> dict[str, Any]:
    """What :func:`~llm_aug.jobs.train.predict_file` would do: rows, method, embedding."""
    check_outputs(output=output_path, inputs=(input_path,))
    estimator, scheme, config = load_model(model_dir)
    data = load_dataset(input_path, scheme, require_labels=False, **(load_kwargs or {}))
    plan = {"command": "predict", "method": config.get("method"), "rows": len(data), "output": str(output_path)}
    return {**plan, **_embedding(estimator, data.texts, probe)}


def _embedding(estimator: Any, texts: list[str], probe: bool) -> dict[str, Any]:
    costs = plan_embedding(estimator, texts, probe=probe)
    known = [c.seconds for c in costs if c.seconds is not None]
    total = sum(known) if len(known) == len(costs) else None
    return {"posts_to_embed": sum(c.posts for c in costs),
            "embedding": [c.as_dict() for c in costs],
            "embedding_seconds": None if total is None else round(total, 1),
            "embedding_time": None if total is None else ("none" if not total else format_duration(total))}


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a few readable lines (the JSON is printed with ``--json``)."""
    if plan["command"] == "train":
        lines = [f"train {plan['method']} ({plan['task']}) on {plan['train_rows']:,} rows, "
                 f"val {plan['val_rows']:,} rows -> {plan['out']}",
                 f"hyper-parameters: {plan['candidates']} candidate(s); {plan['selection']}"]
    else:
        lines = [f"predict {plan['rows']:,} rows with {plan['method']} -> {plan['output']}"]
    lines += [c["estimate"] for c in plan["embedding"]] or ["no embedding: this method does not embed"]
    return "\n".join(lines + ["dry run: nothing fitted or written"])
