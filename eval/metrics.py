"""Classification and ordinal metrics for suicide-risk predictions.

Conventions (shared with :mod:`llm_aug.eval.bootstrap`, which recomputes the same
numbers from confusion counts):

* A prediction of ``None`` (unparseable LLM answer) or an integer outside the
  scheme counts as **wrong**: it is never mapped to a class, so it is a false
  negative for its gold class and a false positive for no class. Its share is
  ``invalid_rate``.
* Per-class precision/recall/F1 use ``zero_division=0``. Weighted averages weight by
  gold support. Macro averages run over the classes that occur in the gold labels
  or the (valid) predictions -- as scikit-learn does without ``labels`` -- so a level
  absent from a small test set does not drag macro F1 down by a fixed 0.
* Ordinal schemes add ``within1`` (share of *all* items with ``|pred - gold| <= 1``;
  invalid predictions count as misses), and ``mae`` and ``qwk`` (quadratic weighted
  kappa), which need a numeric prediction and are therefore computed over the valid
  predictions only; ``ordinal_n`` says how many items that is. Undefined values
  (no valid predictions, or a constant gold and prediction for QWK) are ``None``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_recall_fscore_support

from llm_aug.core.errors import UserError
from llm_aug.data.schemes import LabelScheme

logger = logging.getLogger(__name__)

#: Metric names understood by :mod:`llm_aug.eval.bootstrap` and the reports.
METRICS = ("accuracy", "weighted_f1", "macro_f1", "mae", "qwk", "within1")
ORDINAL_METRICS = ("mae", "qwk", "within1")
LOWER_IS_BETTER = frozenset({"mae"})


def weighted_f1(gold: Sequence[int], pred: Sequence[int], labels: Sequence[int]) -> float:
    """Support-weighted F1 over ``labels``: the score every selection step maximises.

    For valid predictions only (estimators always predict a label); reports that must
    count invalid LLM answers use :func:`compute_metrics`.
    """
    return float(f1_score(gold, pred, labels=list(labels), average="weighted", zero_division=0))


def headline_metrics(scheme: LabelScheme) -> list[str]:
    """The metrics reported with confidence intervals for ``scheme``."""
    return list(METRICS if scheme.ordinal else METRICS[:3])


def clean_preds(pred: Sequence[int | None], labels: Sequence[int]) -> list[int | None]:
    """Predictions with anything outside ``labels`` (including bools) replaced by None."""
    allowed = set(labels)
    out: list[int | None] = []
    bad = 0
    for p in pred:
        ok = p is not None and not isinstance(p, bool) and isinstance(p, (int, np.integer))
        if ok and int(p) in allowed:
            out.append(int(p))
        else:
            bad += p is not None
            out.append(None)
    if bad:
        logger.warning("%d prediction(s) outside labels %s counted as invalid", bad, list(labels))
    return out


def collapse_binary(pred: Sequence[int | None], threshold: int) -> list[int | None]:
    """Map fine-grained levels to 0/1: ``level >= threshold`` -> 1; None stays None."""
    return [None if p is None else int(p >= threshold) for p in pred]


def _check_gold(gold: Sequence[int], labels: Sequence[int], what: str) -> list[int]:
    allowed = set(labels)
    bad = [g for g in gold if g not in allowed]
    if bad:
        raise UserError(f"{what} label(s) {sorted(set(map(str, bad)))[:5]} outside allowed {list(labels)}")
    return [int(g) for g in gold]


def _classification(gold: list[int], pred: list[int | None], labels: list[int]) -> dict:
    """Accuracy, P/R/F1 (weighted, macro, per class) and confusion over ``labels``."""
    sentinel = min(labels) - 1
    y_pred = [sentinel if p is None else p for p in pred]
    prec, rec, f1, support = precision_recall_fscore_support(
        gold, y_pred, labels=labels, average=None, zero_division=0
    )
    conf = confusion_matrix(gold, y_pred, labels=labels)
    predicted = conf.sum(axis=0)
    present = (support + predicted) > 0
    weights = support / support.sum()
    n = len(gold)
    out = {
        "n": n,
        "accuracy": float(np.mean([g == p for g, p in zip(gold, pred)])),
        "weighted_f1": float(weights @ f1),
        "macro_f1": float(f1[present].mean()),
        "weighted_precision": float(weights @ prec),
        "weighted_recall": float(weights @ rec),
        "macro_precision": float(prec[present].mean()),
        "macro_recall": float(rec[present].mean()),
        "invalid_rate": sum(p is None for p in pred) / n,
    }
    invalid = [sum(1 for g, p in zip(gold, pred) if g == lab and p is None) for lab in labels]
    out["_arrays"] = (prec, rec, f1, support, predicted, invalid)
    out["confusion"] = conf.tolist()
    return out


def _ordinal(gold: list[int], pred: list[int | None], labels: list[int]) -> dict:
    """MAE and QWK over valid predictions, within-1 accuracy over all items."""
    pairs = [(g, p) for g, p in zip(gold, pred) if p is not None]
    within1 = sum(abs(g - p) <= 1 for g, p in pairs) / len(gold)
    out: dict = {"mae": None, "qwk": None, "within1": float(within1), "ordinal_n": len(pairs)}
    if not pairs:
        return out
    g_arr, p_arr = (np.array(x) for x in zip(*pairs))
    out["mae"] = float(np.abs(g_arr - p_arr).mean())
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        qwk = cohen_kappa_score(g_arr, p_arr, labels=labels, weights="quadratic")
    out["qwk"] = float(qwk) if np.isfinite(qwk) else None
    return out


def _per_class(cls: dict, scheme: LabelScheme, labels: list[int]) -> dict[str, dict]:
    prec, rec, f1, support, predicted, invalid = cls.pop("_arrays")
    return {
        str(lab): {
            "name": scheme.name_of(lab),
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "invalid": int(invalid[i]),
        }
        for i, lab in enumerate(labels)
    }


def _binary(pred: list[int | None], binary_gold: Sequence[int], threshold: int) -> dict:
    """Score predictions collapsed at ``threshold`` against separate binary gold."""
    bgold = _check_gold(binary_gold, [0, 1], "binary gold")
    cls = _classification(bgold, collapse_binary(pred, threshold), [0, 1])
    prec, rec, f1, support, _, _ = cls.pop("_arrays")
    keep = ("n", "accuracy", "weighted_f1", "macro_f1", "invalid_rate", "confusion")
    out = {"threshold": threshold, **{k: cls[k] for k in keep}}
    out.update(f1=float(f1[1]), precision=float(prec[1]), recall=float(rec[1]), support=int(support[1]))
    return out


def compute_metrics(
    gold: Sequence[int],
    pred: Sequence[int | None],
    scheme: LabelScheme,
    *,
    binary_gold: Sequence[int] | None = None,
    threshold: int | None = None,
) -> dict:
    """All metrics of ``pred`` against ``gold`` under ``scheme`` (see the module doc).

    With ``binary_gold`` (0/1, aligned with ``gold``), the predictions are collapsed
    at ``threshold`` (default ``scheme.binary_threshold``) and scored in ``binary``.
    """
    if len(gold) != len(pred):
        raise UserError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        raise UserError("no items to score")
    labels = scheme.labels
    gold_l = _check_gold(gold, labels, f"gold ({scheme.name})")
    pred_l = clean_preds(pred, labels)
    cls = _classification(gold_l, pred_l, labels)
    out = {k: v for k, v in cls.items() if k not in {"confusion", "_arrays"}}
    if scheme.ordinal:
        out.update(_ordinal(gold_l, pred_l, labels))
    out["labels"] = list(labels)
    out["per_class"] = _per_class(cls, scheme, labels)
    out["confusion"] = cls["confusion"]
    if binary_gold is not None:
        if len(binary_gold) != len(gold_l):
            raise UserError(f"{len(binary_gold)} binary gold labels but {len(gold_l)} items")
        thr = threshold if threshold is not None else scheme.binary_threshold
        if thr is None:
            raise UserError(f"scheme {scheme.name!r} has no binary threshold; pass one explicitly")
        out["binary"] = _binary(pred_l, binary_gold, int(thr))
    return out
