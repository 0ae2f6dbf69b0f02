"""One classifier step: grid search on val, fit on the train set, predict the eval split."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from llm_aug.classifiers.registry import MethodSpec, get_method
from llm_aug.classifiers.store import save_model
from llm_aug.core.files import PREDICTIONS_FILE
from llm_aug.core.manifest import write_manifest
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.experiment.config import ClassifierSystem
from llm_aug.experiment.step import Step
from llm_aug.experiment.train_filter import filter_split, filter_train
from llm_aug.jobs.select import cv_scores
from llm_aug.jobs.train import select_on_val, write_predictions

log = logging.getLogger(__name__)

MODEL_DIR = "model"


def search_spec(system: ClassifierSystem) -> MethodSpec:
    """The method with the system's grid; keys fixed by ``params`` leave the grid.

    ``train_model`` would still enumerate fixed keys and refit identical candidates;
    dropping them here keeps a fully fixed system to a single fit.
    """
    spec = get_method(system.method)
    grid = spec.grid if system.grid is None else system.grid
    return replace(spec, grid={k: v for k, v in grid.items() if k not in system.params})


def _fit(step: Step, train: Dataset, val: Dataset, out: Path) -> tuple[Any, dict[str, Any]]:
    """Select on val and save the model exactly as ``llm-aug train`` lays it out."""
    system = step.system
    assert isinstance(system, ClassifierSystem)
    scheme = scheme_for_task(step.task)
    params, estimator, table = select_on_val(search_spec(system), train, val, scheme, step.seed,
                                             system.params)
    best = next(row for row in table if row["params"] == params)
    config = {"task": step.task, "scheme": scheme.name, "method": system.method, "params": params,
              "seed": step.seed, "selection": "grid on val weighted F1, fit on train",
              "val_weighted_f1": best["val_weighted_f1"]}
    save_model(out, estimator, scheme, config)
    write_manifest(out, "experiment-train", data_files=[step.train_path, val.path], config=config,
                   seed=step.seed, extra={"selection_table": table})
    selection = {"params": params, "val_weighted_f1": best["val_weighted_f1"],
                 "candidates": len(table)}
    return estimator, selection


def _cv(step: Step, params: dict[str, Any], train: Dataset, val: Dataset) -> dict[str, Any]:
    """CV weighted F1 over train+val with the params chosen on val (``llm-aug select``'s procedure)."""
    assert step.cv is not None and isinstance(step.system, ClassifierSystem)
    scheme = scheme_for_task(step.task)
    both = Dataset(train.rows + val.rows, None, scheme)
    t0 = time.perf_counter()
    scores = cv_scores(step.system.method, params, both, scheme, seed=step.seed, **step.cv)
    mean, std = float(np.mean(scores)), float(np.std(scores))
    log.info("%s: CV weighted F1 %.4f ± %.4f", step.id, mean, std)
    return {**step.cv, "mean": mean, "std": std, "scores": scores, "n": len(both),
            "seconds": round(time.perf_counter() - t0, 1)}


def run_classifier(step: Step, val_path: Path, eval_path: Path, work: Path,
                   eval_split: str = "val", original_path: Path | None = None,
                   val_predictions: Path | None = None) -> tuple[dict[str, Any], Dataset]:
    """Fit, predict ``eval_path`` into ``work/predictions.jsonl``; return timing/selection and gold.

    On the test split the training set first loses its copies of test posts (:mod:`.train_filter`;
    ``original_path``, the task's original training file, tells real posts from synthetic ones).
    ``val_predictions`` also gets the model's predictions of val (what a screening profile is fitted on).
    """
    scheme = scheme_for_task(step.task)
    assert step.train_path is not None
    train = load_dataset(step.train_path, scheme)
    val = load_dataset(val_path, scheme)
    data = load_dataset(eval_path, scheme)
    filtered = None
    if filter_split(eval_split):
        original = load_dataset(original_path, scheme) if original_path else None
        train, filtered = filter_train(train, data, eval_split, original)
    t0 = time.perf_counter()
    estimator, selection = _fit(step, train, val, work / MODEL_DIR)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    write_predictions(estimator, data, work / PREDICTIONS_FILE)
    predict_s = time.perf_counter() - t1
    if val_predictions is not None:
        write_predictions(estimator, val, val_predictions)
    log.info("%s: val weighted F1 %.4f with %s", step.id, selection["val_weighted_f1"], selection["params"])
    extra = {"timing": {"fit_seconds": round(fit_s, 3), "predict_seconds": round(predict_s, 3)},
             "selection": selection, "n_train": len(train)}
    if filtered is not None:
        extra["train_filter"] = filtered
    if step.cv:
        extra["cv"] = _cv(step, selection["params"], train, val)
    return extra, data
