"""The jobs: the documented Python API, one function per thing a user runs.

The CLI is a thin shell over these (parse, call, print). Each takes files and plain
settings, writes its outputs and a manifest, and returns a typed result (a
:class:`~llm_aug.jobs.results.JobResult`: attributes, ``to_json()``)::

    from llm_aug import jobs
    jobs.train_model("fine", "train.tsv", "val.tsv", "runs/stack")
    jobs.predict_file("runs/stack", "val.tsv", "runs/stack/val.jsonl")
    jobs.evaluate_predictions("runs/stack/val.jsonl", "val.tsv")

The names below are imported on first use (PEP 562): importing one job must not pull in
what the others need (scikit-learn, matplotlib, torch), or ``llm-aug classify`` would
spend seconds of start-up on libraries it never calls.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from llm_aug.jobs.augment import AugmentConfig, AugmentResult, run_augment
    from llm_aug.jobs.batch import BatchCollectResult, BatchStatus, batch_collect, batch_status
    from llm_aug.jobs.classify import ClassifyResult, classify
    from llm_aug.jobs.compare_matrix import MatrixReport, compare_matrix
    from llm_aug.jobs.compare_prompts import CompareReport, compare_prompts
    from llm_aug.jobs.demo import DemoResult, run_demo
    from llm_aug.jobs.evaluate import EvaluateResult, evaluate_predictions
    from llm_aug.jobs.results import JobResult
    from llm_aug.jobs.select import SelectResult, select_by_cv
    from llm_aug.jobs.train import (
        PredictResult,
        SeedsResult,
        TrainResult,
        predict_file,
        train_model,
        train_seeds,
    )

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "JobResult": "results",
    "AugmentConfig": "augment", "AugmentResult": "augment", "run_augment": "augment",
    "BatchCollectResult": "batch", "BatchStatus": "batch", "batch_collect": "batch", "batch_status": "batch",
    "ClassifyResult": "classify", "classify": "classify",
    "CompareReport": "compare_prompts", "compare_prompts": "compare_prompts",
    "MatrixReport": "compare_matrix", "compare_matrix": "compare_matrix",
    "DemoResult": "demo", "run_demo": "demo",
    "EvaluateResult": "evaluate", "evaluate_predictions": "evaluate",
    "ExportResult": "export_dataset", "export_dataset": "export_dataset",
    "OptimizeResult": "optimize_prompt", "optimize_prompt": "optimize_prompt",
    "SelectResult": "select", "select_by_cv": "select",
    "PredictResult": "train", "SeedsResult": "train", "TrainResult": "train",
    "predict_file": "train", "train_model": "train", "train_seeds": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the job that defines ``name`` on first access and cache it here."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _JobsPackage(types.ModuleType):
    """Keeps ``jobs.classify`` and ``jobs.compare_prompts`` the functions, as documented.

    Importing a submodule binds it on its package under its own name, which would shadow
    the function of the same name once ``llm_aug.jobs.classify`` is first imported.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _JobsPackage
