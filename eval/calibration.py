"""Calibration metrics of class probabilities: ECE, Brier score, log loss, reliability curves.

Every function takes ``proba`` (n, k): one row per post over the scheme's labels in
order (rows sum to 1), and ``y`` (n,): the gold column index 0..k-1 of each row.

**Equal-mass bins** (ECE, reliability curve): rows are sorted by their top-label
confidence (the row maximum) with a stable sort, so tied confidences keep their input
order, and the sorted rows are cut into ``min(n_bins, n)`` contiguous runs of equal
count; when ``n`` is not a multiple of the bin count the first ``n % bins`` runs hold
one row more (``numpy.array_split``). Ties are cut by position, not by value: rows
with the same confidence can land in two adjacent bins, which keeps the counts equal.
The predicted class of a row is its first maximum (``argmax``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from llm_aug.core.errors import UserError
from llm_aug.eval.bootstrap import _percentiles

logger = logging.getLogger(__name__)

EPS = 1e-15  # log loss clips probabilities to [EPS, 1]
_SUM_TOL = 1e-4  # float32 softmax rows (BERT) sum to 1 only within ~1e-6
_CELLS_PER_BATCH = 4_000_000  # resampled rows held at once by the bootstrap


def check_proba(proba: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``proba`` as float (n, k) rows of probabilities and ``y`` as int column indices; UserError otherwise."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise UserError(f"proba must be a non-empty (n, k>=2) array of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1 + _SUM_TOL:
        raise UserError("proba holds values outside [0, 1] (or NaN/inf)")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > _SUM_TOL)
    if bad.size:
        raise UserError(f"proba row {int(bad[0])} sums to {sums[bad[0]]:.6f}, not 1 ({bad.size} such rows)")
    labels = np.asarray(y)
    if labels.shape != (p.shape[0],):
        raise UserError(f"{p.shape[0]} proba rows but y has shape {labels.shape}")
    if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise UserError(f"y must be column indices 0..{p.shape[1] - 1}, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= p.shape[1]:
        raise UserError(f"y must be column indices 0..{p.shape[1] - 1}, got {int(labels.min())}..{int(labels.max())}")
    return p, labels


def _bins(n: int, n_bins: int) -> np.ndarray:
    """Start offsets of the equal-mass bins over ``n`` sorted rows (``array_split``'s sizes)."""
    if n_bins < 1:
        raise UserError(f"n_bins must be at least 1, got {n_bins}")
    bins = min(n_bins, n)
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def _top_label(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (row max) and correctness (argmax == y) per row."""
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(float)


def _ece_batch(conf: np.ndarray, correct: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """ECE of each row of ``conf``/``correct`` (B, n), equal-mass bins starting at ``starts``."""
    order = np.argsort(conf, axis=1, kind="stable")
    c = np.take_along_axis(conf, order, axis=1)
    a = np.take_along_axis(correct, order, axis=1)
    gap = np.abs(np.add.reduceat(a, starts, axis=1) - np.add.reduceat(c, starts, axis=1))
    return gap.sum(axis=1) / conf.shape[1]  # sum_b |B|/n * |acc_b - conf_b| = sum_b |sum(a-c)|/n


def expected_calibration_error(proba: Any, y: Any, n_bins: int = 15) -> float:
    """Top-label expected calibration error: sum over bins of ``|B|/n * |accuracy(B) - confidence(B)|``.

    Bins are equal-mass (see the module docstring for how ties and remainders fall).
    0 is perfect; an over-confident model has accuracy below confidence in most bins.
    """
    p, labels = check_proba(proba, y)
    conf, correct = _top_label(p, labels)
    return float(_ece_batch(conf[None, :], correct[None, :], _bins(len(conf), n_bins))[0])


def _brier_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    terms = ((p - onehot) ** 2).sum(axis=1)
    return terms / 2 if p.shape[1] == 2 else terms


def _log_loss_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))


def brier_score(proba: Any, y: Any) -> float:
    """Brier score: mean over rows of ``sum_k (p_k - onehot_k)^2`` (0 best, 2 worst).

    For two classes it is halved, i.e. the binary Brier score ``mean((p_1 - y)^2)`` in
    [0, 1] (0.25 for a constant 0.5), as ``sklearn.metrics.brier_score_loss`` does
    (``scale_by_half="auto"``); for more classes it is the unscaled multiclass sum.
    """
    p, labels = check_proba(proba, y)
    return float(_brier_terms(p, labels).mean())


def log_loss(proba: Any, y: Any) -> float:
    """Mean negative log probability of the gold class, probabilities clipped to [1e-15, 1]."""
    p, labels = check_proba(proba, y)
    return float(_log_loss_terms(p, labels).mean())


def _resample_idx(n: int, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_boot`` bootstrap resamples of ``n`` row indices, in batches that bound memory."""
    batch = max(1, _CELLS_PER_BATCH // n)
    return [rng.integers(0, n, size=(min(batch, n_boot - start), n)) for start in range(0, n_boot, batch)]


def _ece_if_calibrated(p: np.ndarray, starts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """ECE of ``n_boot`` label sets drawn from the rows themselves (consistency resampling)."""
    (n, k), conf, pred = p.shape, p.max(axis=1), p.argmax(axis=1)
    cum = np.cumsum(p, axis=1)
    batch = max(1, _CELLS_PER_BATCH // (n * k))
    out = []
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        drawn = np.minimum((cum[None, :, :] < rng.random((b, n, 1))).sum(axis=2), k - 1)  # inverse CDF
        out.append(_ece_batch(np.broadcast_to(conf, (b, n)), (drawn == pred).astype(float), starts))
    return np.concatenate(out)


def _interval(stats: np.ndarray, point: float, alpha: float, how: str) -> list[float]:
    lo, hi = _percentiles(stats, alpha)
    if how == "basic":  # reflected about the point: corrects the resamples' bias to first order
        lo, hi = max(0.0, 2 * point - hi), max(0.0, 2 * point - lo)
    return [lo, hi]


def calibration_metrics(proba: Any, y: Any, n_boot: int = 1000, seed: int = 0, *,
                        n_bins: int = 15, alpha: float = 0.05, interval: str = "percentile") -> dict:
    """ECE, Brier score and log loss with bootstrap ``(1 - alpha)`` intervals over rows.

    Returns ``{"ece", "brier", "log_loss", "n", "n_bins", "n_boot", "interval", "ci": {metric:
    [lo, hi]}, "ece_if_calibrated": [lo, hi]}``; ``n_bins`` is the number of bins used
    (``min(n_bins, n)``). Each resample draws ``n`` rows with replacement and recomputes all
    three metrics on the same rows; ``interval="percentile"`` takes the resamples' quantiles,
    ``"basic"`` reflects them about the point value (``[2m - hi, 2m - lo]``, floored at 0).

    The plug-in ECE is biased upwards (each bin's accuracy is a noisy mean of ~n/n_bins
    posts) and resamples are more so, so for a well-calibrated model the percentile ECE
    interval can sit wholly above the point value. ``ece_if_calibrated`` is the central
    ``(1 - alpha)`` range of the ECE a perfectly calibrated model with these very
    confidences would show (labels drawn from the rows): an ECE inside it is no evidence of
    mis-calibration at this sample size.
    """
    p, labels = check_proba(proba, y)
    if n_boot < 1:
        raise UserError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be between 0 and 1, got {alpha}")
    if interval not in ("percentile", "basic"):
        raise UserError(f"interval must be 'percentile' or 'basic', got {interval!r}")
    conf, correct = _top_label(p, labels)
    starts = _bins(len(conf), n_bins)
    rng = np.random.default_rng(seed)
    idx_parts = _resample_idx(len(conf), n_boot, rng)
    point = {"ece": float(_ece_batch(conf[None, :], correct[None, :], starts)[0])}
    stats = {"ece": np.concatenate([_ece_batch(conf[idx], correct[idx], starts) for idx in idx_parts])}
    for name, terms in (("brier", _brier_terms(p, labels)), ("log_loss", _log_loss_terms(p, labels))):
        point[name] = float(terms.mean())
        stats[name] = np.concatenate([terms[idx].mean(axis=1) for idx in idx_parts])
    return {
        **point,
        "n": int(len(labels)),
        "n_bins": int(len(starts)),
        "n_boot": int(n_boot),
        "interval": interval,
        "ci": {name: _interval(stats[name], point[name], alpha, interval) for name in point},
        "ece_if_calibrated": list(_percentiles(_ece_if_calibrated(p, starts, n_boot, rng), alpha)),
    }


def reliability_curve(proba: Any, y: Any, n_bins: int = 15) -> list[dict]:
    """Per equal-mass bin, lowest confidence first: ``lo``/``hi`` (its confidence range),
    ``confidence`` (mean top-label confidence), ``accuracy`` (share of argmax == gold) and ``count``."""
    p, labels = check_proba(proba, y)
    conf, correct = _top_label(p, labels)
    order = np.argsort(conf, kind="stable")
    c, a = conf[order], correct[order]
    starts = _bins(len(c), n_bins)
    ends = np.append(starts[1:], len(c))
    return [
        {"lo": float(c[s]), "hi": float(c[e - 1]), "confidence": float(c[s:e].mean()),
         "accuracy": float(a[s:e].mean()), "count": int(e - s)}
        for s, e in zip(starts, ends)
    ]
