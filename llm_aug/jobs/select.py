"""Choosing a method without touching test: repeated stratified k-fold CV over train+val.

Val alone is 200 posts (CIs about 0.14 wide), too few to rank methods that differ by a
few points. Each method's hyper-parameters are first chosen on val (as ``train`` does);
the methods are then compared by the mean weighted F1 over ``folds x repeats`` fits on
train+val. The test split plays no part.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from sklearn.model_selection import RepeatedStratifiedKFold

from llm_aug.classifiers.registry import get_method
from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_text
from llm_aug.core.manifest import write_manifest
from llm_aug.core.progress import progress
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.metrics import weighted_f1
from llm_aug.jobs.results import JobResult, ResultPart
from llm_aug.jobs.train import fit, select_on_val

log = logging.getLogger(__name__)


class CVScore(ResultPart):
    """One method's cross-validated weighted F1."""

    method: str
    params: dict[str, Any] = Field(description="its parameters, chosen on val")
    cv_mean: float = Field(description="mean weighted F1 over the held-out folds")
    cv_std: float = Field(description="their standard deviation")
    folds: list[float] = Field(description="weighted F1 of every held-out fold, in split order")


class SelectResult(JobResult):
    """What :func:`select_by_cv` ranked; its JSON is ``OUT/selection.json``, key for key."""

    task: Task
    folds: int
    repeats: int
    seed: int
    best: str = Field(description="the method with the highest mean")
    ranking: list[CVScore] = Field(description="every method, best first")


def cv_scores(method: str, params: dict[str, Any], data: Dataset, scheme: LabelScheme, *,
              folds: int = 5, repeats: int = 3, seed: int = 0) -> list[float]:
    """Weighted F1 of ``method`` with ``params`` on every held-out fold of ``data``."""
    spec = get_method(method)
    if spec.fit_with_val:  # its early stopping would peek at the held-out fold
        raise UserError(f"method {method!r} early-stops on val; compare it on val, not by CV")
    labels = np.asarray(data.labels)
    smallest = min(np.bincount(labels)[np.unique(labels)])
    if smallest < folds:
        raise UserError(f"--folds {folds} needs at least {folds} posts per level; the rarest has {smallest}")
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    scores = []
    for tr, te in progress(list(splitter.split(np.zeros(len(labels)), labels)), desc=f"CV {method}"):
        part = Dataset([data.rows[i] for i in tr], data.path, scheme)
        held = Dataset([data.rows[i] for i in te], data.path, scheme)
        pred = fit(spec, params, seed, part, held).predict(held.texts)
        scores.append(weighted_f1(held.labels, pred, scheme.labels))
    return scores


def select_by_cv(task: Task | str, train_path: Path, val_path: Path, methods: list[str], out: Path, *,
                 folds: int = 5, repeats: int = 3, seed: int = 0) -> SelectResult:
    """Rank ``methods`` by CV over train+val (params chosen on val); write ``selection.json``."""
    scheme = scheme_for_task(task)
    train, val = load_dataset(train_path, scheme), load_dataset(val_path, scheme)
    both = Dataset(train.rows + val.rows, None, scheme)
    rows = []
    for method in methods:
        params, _, _ = select_on_val(get_method(method), train, val, scheme, seed)
        scores = cv_scores(method, params, both, scheme, folds=folds, repeats=repeats, seed=seed)
        rows.append({"method": method, "params": params, "cv_mean": float(np.mean(scores)),
                     "cv_std": float(np.std(scores)), "folds": scores})
        log.info("%s: CV weighted F1 %.4f ± %.4f", method, rows[-1]["cv_mean"], rows[-1]["cv_std"])
    rows.sort(key=lambda r: -r["cv_mean"])
    result = SelectResult(task=task, folds=folds, repeats=repeats, seed=seed, best=rows[0]["method"],
                          ranking=rows)
    atomic_write_text(out / "selection.json", json.dumps(result.to_json(), indent=2))
    write_manifest(out, "select", data_files=[train_path, val_path], seed=seed,
                   config={"task": task, "methods": methods, "folds": folds, "repeats": repeats})
    return result
