"""Percentile bootstrap confidence intervals and paired bootstrap tests.

Each resample's metric is computed from its confusion counts (one ``np.bincount``
for a whole batch of resamples) rather than by calling scikit-learn per resample;
the formulas follow the conventions of :mod:`llm_aug.eval.metrics` exactly (invalid
predictions are an extra column that is never a class; macro averages over classes
present in the resample; MAE/QWK over valid predictions; within-1 over all items).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from llm_aug.core.errors import UserError
from llm_aug.eval.metrics import LOWER_IS_BETTER, METRICS

logger = logging.getLogger(__name__)

_CELLS_PER_BATCH = 4_000_000  # resample indices held in memory at once


def _encode(
    gold: Sequence[int], pred: Sequence[int | None], labels: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold/pred as indices into ``labels``; invalid predictions get index ``K``."""
    if len(gold) != len(pred):
        raise UserError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not len(gold):
        raise UserError("no items to resample")
    if labels is None:
        labels = sorted({int(g) for g in gold} | {int(p) for p in pred if p is not None})
    index = {int(lab): i for i, lab in enumerate(labels)}
    try:
        g = np.array([index[int(x)] for x in gold], dtype=np.int64)
    except KeyError as exc:
        raise UserError(f"gold label {exc.args[0]} is not one of {list(labels)}") from None
    k = len(labels)
    p = np.array([k if x is None else index.get(int(x), k) for x in pred], dtype=np.int64)
    return g, p, np.asarray(labels, dtype=float)


def _confusions(g: np.ndarray, p: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Confusion counts (B, K, K+1) of the resamples in ``idx`` (B, n); last column = invalid."""
    b = idx.shape[0]
    cells = k * (k + 1)
    codes = np.arange(b)[:, None] * cells + g[idx] * (k + 1) + p[idx]
    return np.bincount(codes.ravel(), minlength=b * cells).reshape(b, k, k + 1)


def _f1(conf: np.ndarray, average: str) -> np.ndarray:
    valid = conf[:, :, :-1]
    tp = np.diagonal(valid, axis1=1, axis2=2)
    support = conf.sum(axis=2)
    denom = support + valid.sum(axis=1)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    if average == "weighted":
        return (f1 * support).sum(axis=1) / support.sum(axis=1)
    present = denom > 0
    return (f1 * present).sum(axis=1) / present.sum(axis=1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def metric_from_confusion(conf: np.ndarray, values: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` for each confusion in ``conf`` (B, K, K+1); ``values`` = label values (K,)."""
    valid = conf[:, :, :-1].astype(float)
    n = conf.sum(axis=(1, 2))
    dist = np.abs(values[:, None] - values[None, :])
    if metric == "accuracy":
        return np.trace(valid, axis1=1, axis2=2) / n
    if metric in {"weighted_f1", "macro_f1"}:
        return _f1(conf, metric.split("_")[0])
    if metric == "within1":
        return (valid * (dist <= 1)).sum(axis=(1, 2)) / n
    n_valid = valid.sum(axis=(1, 2))
    if metric == "mae":
        return _ratio((valid * dist).sum(axis=(1, 2)), n_valid)
    if metric == "qwk":
        safe_n = np.where(n_valid > 0, n_valid, 1.0)[:, None, None]
        expected = valid.sum(axis=2)[:, :, None] * valid.sum(axis=1)[:, None, :] / safe_n
        w = dist**2
        kappa = 1.0 - _ratio((w * valid).sum(axis=(1, 2)), (w * expected).sum(axis=(1, 2)))
        return np.where(n_valid > 0, kappa, np.nan)
    raise UserError(f"unknown metric {metric!r}; use one of: {', '.join(METRICS)}")


def _resampled(encoded: list[tuple], metric: str, n_boot: int, seed: int) -> list[np.ndarray]:
    """Metric of each system in ``encoded`` on the same ``n_boot`` resamples."""
    n = len(encoded[0][0])
    rng = np.random.default_rng(seed)
    batch = max(1, _CELLS_PER_BATCH // n)
    parts: list[list[np.ndarray]] = [[] for _ in encoded]
    for start in range(0, n_boot, batch):
        idx = rng.integers(0, n, size=(min(batch, n_boot - start), n))
        for i, (g, p, values) in enumerate(encoded):
            parts[i].append(metric_from_confusion(_confusions(g, p, len(values), idx), values, metric))
    return [np.concatenate(ps) if ps else np.empty(0) for ps in parts]


def _point(g: np.ndarray, p: np.ndarray, values: np.ndarray, metric: str) -> float:
    idx = np.arange(len(g))[None, :]
    return float(metric_from_confusion(_confusions(g, p, len(values), idx), values, metric)[0])


def _check(metric: str, n_boot: int, alpha: float) -> None:
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; use one of: {', '.join(METRICS)}")
    if n_boot < 1:
        raise UserError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be between 0 and 1, got {alpha}")


def _percentiles(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    stats = stats[np.isfinite(stats)]
    if not stats.size:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(lo), float(hi))


def _p_value(deltas: np.ndarray) -> float:
    """Two-sided: twice the smaller (+1 smoothed) share of deltas on either side of 0."""
    if not deltas.size:
        return float("nan")
    m = deltas.size + 1
    return float(min(1.0, 2 * min((np.sum(deltas <= 0) + 1) / m, (np.sum(deltas >= 0) + 1) / m)))


def bootstrap_ci(
    gold: Sequence[int],
    pred: Sequence[int | None],
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    labels: Sequence[int] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``metric`` over items.

    ``labels`` (e.g. ``scheme.labels``) defines the classes; by default the labels
    seen in ``gold`` and ``pred``. Resamples where the metric is undefined are
    dropped; if all are, the interval is ``(nan, nan)``.
    """
    _check(metric, n_boot, alpha)
    (stats,) = _resampled([_encode(gold, pred, labels)], metric, n_boot, seed)
    return _percentiles(stats, alpha)


def paired_bootstrap(
    gold: Sequence[int],
    pred_a: Sequence[int | None],
    pred_b: Sequence[int | None],
    metric: str,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    labels: Sequence[int] | None = None,
) -> dict:
    """Paired bootstrap of ``metric(a) - metric(b)`` on the same resampled items.

    Returns ``delta`` (on the full data), ``ci`` (percentile interval of the
    resampled deltas) and a two-sided ``p_value``: twice the smaller share of
    resampled deltas on either side of zero (with +1 smoothing, capped at 1), so
    identical systems get 1.0. For ``mae`` a negative delta means *a* is better.
    """
    _check(metric, n_boot, alpha)
    if len(pred_a) != len(pred_b):
        raise UserError(f"paired systems differ in length: {len(pred_a)} vs {len(pred_b)}")
    if labels is None:
        seen = {int(p) for p in [*pred_a, *pred_b] if p is not None}
        labels = sorted({int(g) for g in gold} | seen)
    enc_a, enc_b = _encode(gold, pred_a, labels), _encode(gold, pred_b, labels)
    stats_a, stats_b = _resampled([enc_a, enc_b], metric, n_boot, seed)
    deltas = stats_a - stats_b
    deltas = deltas[np.isfinite(deltas)]
    delta = _point(*enc_a, metric) - _point(*enc_b, metric)
    return {
        "metric": metric,
        "delta": delta,
        "ci": _percentiles(deltas, alpha),
        "p_value": _p_value(deltas),
        "n": len(gold),
        "n_boot": n_boot,
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (NaN stays NaN, not counted).

    The i-th smallest of m p-values is multiplied by ``m - i`` (i from 0), made
    non-decreasing in that order, and capped at 1.
    """
    finite = [i for i, p in enumerate(p_values) if np.isfinite(p)]
    order = sorted(finite, key=lambda i: p_values[i])
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def worse_p_value(
    gold: Sequence[int],
    pred_new: Sequence[int | None],
    pred_base: Sequence[int | None],
    metric: str,
    margin: float = 0.0,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    labels: Sequence[int] | None = None,
) -> float:
    """One-sided paired bootstrap p-value that ``pred_new`` is worse than ``pred_base`` by more than ``margin``.

    Null: the new system is at most ``margin`` worse. The p-value is the (+1 smoothed)
    share of resampled deltas (new - base) on the null's side of ``-margin`` (of
    ``+margin`` for metrics where lower is better, such as ``mae``); the resamples are
    those of :func:`paired_bootstrap` with the same seed.
    """
    _check(metric, n_boot, 0.05)
    if len(pred_new) != len(pred_base):
        raise UserError(f"paired systems differ in length: {len(pred_new)} vs {len(pred_base)}")
    if labels is None:
        labels = sorted({int(g) for g in gold} | {int(p) for p in [*pred_new, *pred_base] if p is not None})
    stats_new, stats_base = _resampled([_encode(gold, pred_new, labels), _encode(gold, pred_base, labels)],
                                       metric, n_boot, seed)
    deltas = stats_new - stats_base
    deltas = deltas[np.isfinite(deltas)]
    if not deltas.size:
        return float("nan")
    on_null_side = deltas <= margin if metric in LOWER_IS_BETTER else deltas >= -margin
    return float((np.sum(on_null_side) + 1) / (deltas.size + 1))
