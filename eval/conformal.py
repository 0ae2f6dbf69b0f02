"""Split-conformal prediction sets over risk levels: marginal, per-level (Mondrian) and ordinal.

All three take predicted probabilities (rows sum to 1, columns = labels in order) on a
calibration split and return a :class:`ConformalSets` that is plain JSON, so it can be saved
beside a model. On exchangeable new posts the set holds the true label with probability
>= 1 - alpha: on average over posts (marginal, ordinal), or within each true level (Mondrian).

* ``marginal``: MAPIE's :class:`~mapie.classification.SplitConformalClassifier` computes the
  LAC (Sadinle, Lei & Wasserman 2019) or APS (Romano, Sesia & Candes 2020) conformity scores;
  the sets follow MAPIE's rules (LAC: every label with 1 - p <= q; APS: the most probable
  labels until their mass reaches q, the last label included, MAPIE's default). A test checks
  them against MAPIE's own ``predict_set``.
* ``mondrian``: the same scores, one quantile per true level (class-conditional conformal
  prediction, Vovk et al. 2005; Sadinle et al. 2019 section 4.3). MAPIE 1.6 has none.
* ``ordinal``: Ordinal APS (Lu, Angelopoulos, Bates et al., "Improving trustworthiness of AI
  disease severity rating in medical imaging with ordinal conformal prediction sets", 2022):
  a contiguous range grown from the most probable level, one neighbour at a time toward the
  more probable side, until its mass passes the calibrated threshold. MAPIE has no ordinal sets.

The threshold is the ceil((n+1)(1-alpha))-th smallest calibration score, the finite-sample
quantile (its level is ceil((n+1)(1-alpha))/n). When n < ceil((n+1)(1-alpha)), i.e.
n < 1/alpha - 1 (9 posts at alpha 0.1), no finite threshold gives the guarantee: the quantile
is None, every set is all labels, and ``trivial`` says so (for Mondrian, per level).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

__all__ = [
    "ConformalSets", "LevelQuantile", "conformal_quantile", "coverage_report", "fit_conformal",
    "format_set", "predict_sets", "set_masks",
]

Kind = Literal["marginal", "mondrian", "ordinal"]
#: MAPIE's tolerance on score comparisons, so our sets agree with its ``predict_set``.
_EPS = 1e-8


class LevelQuantile(BaseModel):
    """The Mondrian threshold of one label column: ``quantile`` None when ``n`` is too small."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    index: int
    n: int
    quantile: float | None


class ConformalSets(BaseModel):
    """A calibrated set predictor, JSON-serialisable (``model_dump_json``/``model_validate_json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    alpha: float
    score: Literal["lac", "aps", "ordinal_aps"]
    n_cal: int
    n_classes: int
    labels: list[int] | None = None  # the column labels, when fit_conformal was given them
    quantile: float | None = None  # marginal and ordinal
    per_level: list[LevelQuantile] = Field(default_factory=list)  # mondrian
    trivial: bool = False  # a threshold could not be set: all labels (mondrian: that label) always in
    note: str = ""


def conformal_quantile(scores: np.ndarray, alpha: float) -> float | None:
    """The ceil((n+1)(1-alpha))-th smallest score; None when that rank exceeds n."""
    s = np.sort(np.asarray(scores, dtype=float).ravel())
    rank = math.ceil((s.size + 1) * (1.0 - alpha) - 1e-9)  # the guard keeps 200 * 0.9 at 180
    if s.size == 0 or rank > s.size:
        return None
    return float(s[max(rank, 1) - 1])


def _normalise(proba: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or (n_classes is not None and p.shape[1] != n_classes):
        raise ValueError(f"proba has shape {p.shape}; expected (n, {n_classes or 'n_classes'})")
    if np.isnan(p).any() or (p < 0).any():
        raise ValueError("proba must be non-negative probabilities")
    total = p.sum(axis=1, keepdims=True)
    return p / np.where(total > 0, total, 1.0)  # float32 model outputs sum to 1 only roughly


def _column_indices(y: Sequence[int] | np.ndarray, n_classes: int, labels: Sequence[int] | None) -> np.ndarray:
    if labels is not None:
        pos = {int(v): i for i, v in enumerate(labels)}
        unknown = sorted({int(v) for v in y} - pos.keys())
        if unknown:
            raise ValueError(f"labels {unknown} are not among {list(labels)}")
        return np.asarray([pos[int(v)] for v in y], dtype=int)
    idx = np.asarray(y, dtype=int).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ValueError(f"y must be column indices in 0..{n_classes - 1}")
    return idx


def fit_conformal(proba: np.ndarray, y: Sequence[int] | np.ndarray, alpha: float = 0.1, kind: Kind = "marginal",
                  score: Literal["lac", "aps"] = "lac", labels: Sequence[int] | None = None) -> ConformalSets:
    """Calibrate prediction sets at coverage 1 - ``alpha`` on ``proba`` with true ``y``.

    ``y`` holds column indices, or label values when ``labels`` (the column labels) is given.
    ``score`` chooses LAC or APS for the marginal and Mondrian kinds; the ordinal kind has its
    own score (the mass of the range before the true level joins it) and ignores it.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    p = _normalise(proba)
    k = p.shape[1]
    if labels is not None and len(labels) != k:
        raise ValueError(f"{len(labels)} labels for {k} probability columns")
    idx = _column_indices(y, k, labels)
    if idx.size != p.shape[0]:
        raise ValueError(f"proba has {p.shape[0]} rows but y has {idx.size}")
    base = {"kind": kind, "alpha": float(alpha), "n_cal": int(idx.size), "n_classes": k,
            "labels": None if labels is None else [int(v) for v in labels]}
    if kind == "ordinal":
        _, before, pos = _ordinal_growth(p)
        q = conformal_quantile(before[np.arange(idx.size), pos[np.arange(idx.size), idx]], alpha)
        return _with_note(ConformalSets(score="ordinal_aps", quantile=q, trivial=q is None, **base))
    if score not in ("lac", "aps"):
        raise ValueError(f"score must be 'lac' or 'aps'; got {score!r}")
    scores = _mapie_scores(p, idx, score)
    if kind == "marginal":
        q = conformal_quantile(scores, alpha)
        return _with_note(ConformalSets(score=score, quantile=q, trivial=q is None, **base))
    if kind != "mondrian":
        raise ValueError(f"kind must be marginal, mondrian or ordinal; got {kind!r}")
    per = [LevelQuantile(index=c, n=int((idx == c).sum()), quantile=conformal_quantile(scores[idx == c], alpha))
           for c in range(k)]
    return _with_note(ConformalSets(score=score, per_level=per,
                                    trivial=any(lq.quantile is None for lq in per), **base))


def _with_note(sets: ConformalSets) -> ConformalSets:
    if not sets.trivial:
        return sets
    need = math.ceil(1.0 / sets.alpha - 1.0 - 1e-9)
    if sets.kind == "mondrian":
        few = [lq.index if sets.labels is None else sets.labels[lq.index]
               for lq in sets.per_level if lq.quantile is None]
        what = "columns" if sets.labels is None else "labels"
        note = f"{what} {few} have fewer than {need} calibration posts each: they are in every set"
    else:
        note = f"{sets.n_cal} calibration posts are fewer than the {need} needed at alpha {sets.alpha:g}: sets are all labels"
    log.warning("conformal %s: %s", sets.kind, note)
    return sets.model_copy(update={"note": note})


def _mapie_scores(p: np.ndarray, idx: np.ndarray, score: str) -> np.ndarray:
    """Calibration conformity scores from MAPIE, the probabilities passed through as a prefit model."""
    from mapie.classification import SplitConformalClassifier

    from llm_aug.eval._proba_model import ProbaPassthrough

    model = ProbaPassthrough(n_classes=p.shape[1]).fit(p, idx)
    # random_state: APS randomises its calibration scores; fixed so a refit gives the same sets
    scc = SplitConformalClassifier(estimator=model, conformity_score=score, prefit=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "fewer labels than training": a rare level may be absent
        scc.conformalize(p, idx)
    return np.asarray(scc.conformity_scores, dtype=float).ravel()


def _mass_above(p: np.ndarray) -> np.ndarray:
    """Per cell, the mass of the strictly more probable labels of its row (tie-proof APS rank)."""
    return np.stack([(p * (p > p[:, [c]])).sum(axis=1) for c in range(p.shape[1])], axis=1)


def _ordinal_growth(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordinal APS growth per row: columns in joining order, mass before each joins, each column's step.

    Starts at the argmax and adds the more probable neighbour (the higher level on a tie,
    the cautious side for risk), so every prefix of the order is a contiguous range.
    """
    n, k = p.shape
    rows = np.arange(n)
    order = np.empty((n, k), dtype=int)
    before = np.zeros((n, k))
    lo = hi = np.argmax(p, axis=1)
    order[:, 0], mass = lo, p[rows, lo]
    for step in range(1, k):
        p_left = np.where(lo > 0, p[rows, np.maximum(lo - 1, 0)], -1.0)
        p_right = np.where(hi < k - 1, p[rows, np.minimum(hi + 1, k - 1)], -1.0)
        right = p_right >= p_left
        new = np.where(right, hi + 1, lo - 1)
        hi, lo = np.where(right, new, hi), np.where(right, lo, new)
        order[:, step], before[:, step] = new, mass
        mass = mass + p[rows, new]
    pos = np.empty_like(order)
    pos[rows[:, None], order] = np.arange(k)[None, :]
    return order, before, pos


def set_masks(sets: ConformalSets, proba: np.ndarray) -> np.ndarray:
    """Boolean (n, n_classes): which columns each row's set holds."""
    p = _normalise(proba, sets.n_classes)
    if sets.kind == "ordinal":
        if sets.quantile is None:
            return np.ones(p.shape, dtype=bool)
        _, before, pos = _ordinal_growth(p)
        joined = (before <= sets.quantile + _EPS).sum(axis=1)  # before is non-decreasing: a prefix
        return pos < joined[:, None]
    if sets.kind == "marginal":
        q = np.full(sets.n_classes, np.inf if sets.quantile is None else sets.quantile)
    else:
        q = np.asarray([np.inf if lq.quantile is None else lq.quantile for lq in sets.per_level])
    if sets.score == "lac":
        return (1.0 - p) - q[None, :] <= _EPS
    above = _mass_above(p)
    # APS with the last label in (MAPIE's include_last_label=True): a label joins while the mass
    # above it is still short of q; the top label always joins
    return (above < q[None, :] - _EPS) | (above <= 0.0)


def predict_sets(sets: ConformalSets, proba: np.ndarray) -> list[list[int]]:
    """Each row's set as sorted column indices (an ordinal set is a contiguous run)."""
    return [np.flatnonzero(row).tolist() for row in set_masks(sets, proba)]


def format_set(labels: Sequence[int], indices: Sequence[int]) -> str:
    """A set for a reader: ``"5-8"`` when contiguous, ``"3,5"`` otherwise, ``"6"`` alone, ``""`` empty."""
    idx = sorted(int(i) for i in indices)
    if not idx:
        return ""
    names = [str(labels[i]) for i in idx]
    if len(idx) > 1 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[0]}-{names[-1]}"
    return ",".join(names)


def coverage_report(sets_list: Sequence[Sequence[int]], y: Sequence[int] | np.ndarray,
                    labels: Sequence[int]) -> dict:
    """Empirical coverage and set size, overall and per true label.

    ``sets_list`` holds column indices (as :func:`predict_sets` returns), ``y`` label values,
    ``labels`` the column labels. Keys: coverage, mean_size, n, per_level
    {label: {coverage, n, mean_size}}, size_histogram {size: count}.
    """
    idx = _column_indices(y, len(labels), labels)
    if len(sets_list) != idx.size:
        raise ValueError(f"{len(sets_list)} sets but {idx.size} labels")
    covered = np.asarray([int(t) in set(s) for s, t in zip(sets_list, idx)], dtype=bool)
    sizes = np.asarray([len(s) for s in sets_list], dtype=int)
    per_level = {}
    for c, label in enumerate(labels):
        m = idx == c
        per_level[str(label)] = {"coverage": float(covered[m].mean()) if m.any() else None, "n": int(m.sum()),
                                 "mean_size": float(sizes[m].mean()) if m.any() else None}
    return {
        "coverage": float(covered.mean()) if idx.size else None,
        "mean_size": float(sizes.mean()) if idx.size else None,
        "n": int(idx.size),
        "per_level": per_level,
        "size_histogram": {str(k): v for k, v in sorted(Counter(sizes.tolist()).items())},
    }
