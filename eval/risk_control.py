"""High-risk operating points with a recall guarantee (Learn-then-Test, via MAPIE).

A screening team needs a threshold on P(high risk) that misses few high-risk posts, and to
know how sure that is. :func:`recall_threshold` picks, on a calibration split, the highest
threshold whose recall of high-risk posts is >= ``target`` with probability >= 1 - ``delta``
over the draw of that split (Angelopoulos, Bates, Candes, Jordan & Lei, "Learn then Test",
2021), using MAPIE's :class:`~mapie.risk_control.BinaryClassificationController`
(Hoeffding-Bentkus p-values). The guarantee assumes the calibration posts and the posts to
be screened are exchangeable (drawn from the same distribution); it is about the recall on
that distribution, not on any one batch.

MAPIE (and with it scikit-learn and scipy) is imported inside the functions that need it, so
importing this module for :func:`operating_point` or the tables stays cheap.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

__all__ = [
    "ThresholdChoice", "format_operating_table", "high_risk_probability", "high_risk_truth",
    "operating_point", "operating_table", "recall_threshold",
]

#: SOS-1K's high-risk cut: levels 6..10 collapse to "high risk" (the sos11 scheme's binary_threshold).
HIGH_RISK_LEVEL = 6


class ThresholdChoice(BaseModel):
    """A high-risk threshold chosen on a calibration split, and whether it carries the guarantee.

    ``valid`` is False when no threshold above 0 can be certified (too few high-risk posts for
    the target and delta); ``threshold`` is then 0: flag every post, the only operating point
    whose recall (1) is certain.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float
    target: float
    delta: float
    risk: Literal["recall"] = "recall"
    valid: bool
    n_cal: int
    n_pos: int
    cal_recall: float | None = None
    fwer_method: str = "fixed_sequence"
    note: str = ""


def _is_binary(labels: Sequence[int]) -> bool:
    return [int(v) for v in labels] == [0, 1]


def high_risk_probability(proba: np.ndarray, labels: Sequence[int], level: int = HIGH_RISK_LEVEL) -> np.ndarray:
    """P(label >= ``level``) per row of ``proba`` (columns = ``labels`` in order).

    For the binary scheme (labels ``[0, 1]``) it is the column of label 1, whatever ``level``.
    """
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"proba has shape {p.shape}; expected (n, {len(labels)}) for labels {list(labels)}")
    if _is_binary(labels):
        return p[:, 1].copy()
    high = np.asarray([int(v) >= level for v in labels])
    if not high.any():
        raise ValueError(f"no label >= {level} among {list(labels)}")
    return np.clip(p[:, high].sum(axis=1), 0.0, 1.0)


def high_risk_truth(y_labels: Sequence[int] | np.ndarray, labels: Sequence[int],
                    level: int = HIGH_RISK_LEVEL) -> np.ndarray:
    """1 where the gold label is high risk (label 1 in the binary scheme, >= ``level`` otherwise)."""
    y = np.asarray(y_labels, dtype=int)
    return (y == 1 if _is_binary(labels) else y >= level).astype(int)


def _two_columns(p_high: np.ndarray) -> np.ndarray:
    """The controller's ``predict_function``: its X *is* the score, shown as [[1-p, p]] rows."""
    p = np.asarray(p_high, dtype=float).ravel()
    return np.column_stack([1.0 - p, p])


def _check_inputs(p_high: np.ndarray, y_high: np.ndarray, target: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_high, dtype=float).ravel()
    y = np.asarray(y_high).astype(int).ravel()
    if p.shape != y.shape:
        raise ValueError(f"p_high has {p.size} rows but y_high has {y.size}")
    if not (0.0 < target < 1.0 and 0.0 < delta < 1.0):
        raise ValueError(f"target and delta must lie in (0, 1); got target={target}, delta={delta}")
    if p.size and (np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("p_high must be probabilities in [0, 1]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_high must be 0/1")
    return p, y


def parse_recall_target(value: str | float) -> float:
    """``recall=0.95`` or ``0.95`` -> 0.95; ValueError (message without the value) otherwise."""
    name, _, number = str(value).rpartition("=")
    if name not in ("", "recall"):
        raise ValueError("only recall targets are supported (recall=0.95)")
    try:
        target = float(number)
    except ValueError:
        raise ValueError("not a number") from None
    if not 0 < target < 1:
        raise ValueError("a recall target lies between 0 and 1")
    return target


def positives_needed(target: float, delta: float) -> int:
    """Fewest high-risk calibration posts for which any threshold above 0 can be certified.

    With no miss at all, the Hoeffding p-value is ``target ** n_pos``; it must reach ``delta``.
    """
    return math.ceil(math.log(delta) / math.log(target))


def recall_threshold(p_high: np.ndarray, y_high: np.ndarray, target: float, delta: float,
                     grid: np.ndarray | None = None, fwer_method: str = "fixed_sequence") -> ThresholdChoice:
    """The highest threshold (fewest alerts) with P(recall >= ``target``) >= 1 - ``delta``.

    Flag a post when ``p_high >= threshold``. The default grid is 0 and the distinct scores of
    the high-risk calibration posts: recall changes only there and, for a given recall, that
    score is the highest threshold reaching it, so the grid loses nothing against a
    continuum. Recall falls as the threshold rises, so the grid is tested in that order with
    fixed-sequence testing (no multiplicity penalty, unlike Bonferroni over the grid);
    ``fwer_method`` passes through to MAPIE for the other procedures.
    """
    p, y = _check_inputs(p_high, y_high, target, delta)
    n_pos = int(y.sum())
    base = {"target": float(target), "delta": float(delta), "n_cal": int(p.size), "n_pos": n_pos,
            "fwer_method": fwer_method}
    if n_pos == 0:
        return ThresholdChoice(threshold=0.0, valid=False, cal_recall=None, **base,
                               note="no high-risk post in the calibration split: recall cannot be estimated; "
                                    "flag every post")
    if grid is None:
        grid = np.concatenate([[0.0], p[y == 1]])
    grid = np.unique(np.clip(np.asarray(grid, dtype=float).ravel(), 0.0, 1.0))  # sorted: easiest first
    best = _mapie_best_threshold(p, y, float(target), float(delta), grid, fwer_method)
    if best is None:
        need = positives_needed(target, delta)
        note = (f"no threshold certifies recall >= {target:g} at delta {delta:g} with {n_pos} high-risk "
                f"calibration posts (at least {need} needed even with no miss); flag every post")
        log.info("recall_threshold: %s", note)
        return ThresholdChoice(threshold=0.0, valid=False, cal_recall=1.0, **base, note=note)
    cal_recall = float((p[y == 1] >= best).mean())
    return ThresholdChoice(threshold=float(best), valid=True, cal_recall=cal_recall, **base)


def _mapie_best_threshold(p: np.ndarray, y: np.ndarray, target: float, delta: float, grid: np.ndarray,
                          fwer_method: str) -> float | None:
    """MAPIE's Learn-then-Test choice among ``grid``, fewest predicted positives first; None if none is valid."""
    from mapie.risk_control import BinaryClassificationController

    controller = BinaryClassificationController(
        predict_function=_two_columns, risk="recall", target_level=target, confidence_level=1.0 - delta,
        best_predict_param_choice="predicted_positive_fraction", list_predict_params=grid,
        fwer_method=fwer_method,
    )
    with warnings.catch_warnings():
        # "no valid threshold" is reported through valid=False; 0/1 scores (hard votes) are legitimate here
        warnings.simplefilter("ignore", UserWarning)
        controller.calibrate(p, y)
    best = controller.best_predict_param
    return None if best is None else float(best)  # type: ignore[arg-type]


def operating_point(p_high: np.ndarray, y_high: np.ndarray, threshold: float) -> dict:
    """What flagging ``p_high >= threshold`` does on a labelled split.

    Keys: recall, precision (None when undefined), alert_rate_per_1000, flagged, missed
    (high-risk posts not flagged), n, n_pos.
    """
    p = np.asarray(p_high, dtype=float).ravel()
    y = np.asarray(y_high).astype(int).ravel()
    if p.shape != y.shape:
        raise ValueError(f"p_high has {p.size} rows but y_high has {y.size}")
    flag = p >= threshold
    n, n_pos, flagged = int(p.size), int(y.sum()), int(flag.sum())
    hits = int((flag & (y == 1)).sum())
    return {
        "recall": hits / n_pos if n_pos else None,
        "precision": hits / flagged if flagged else None,
        "alert_rate_per_1000": 1000.0 * flagged / n if n else None,
        "flagged": flagged,
        "missed": n_pos - hits,
        "n": n,
        "n_pos": n_pos,
    }


def operating_table(choices: Sequence[ThresholdChoice], p_eval: np.ndarray, y_eval: np.ndarray) -> list[dict]:
    """One row per chosen threshold: the choice (target, delta, threshold, valid) and its operating point on eval."""
    rows = []
    for c in choices:
        row = {"target": c.target, "delta": c.delta, "threshold": c.threshold, "valid": c.valid,
               "n_cal": c.n_cal, "n_cal_pos": c.n_pos, "note": c.note}
        row.update(operating_point(p_eval, y_eval, c.threshold))
        rows.append(row)
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_operating_table(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`operating_table` rows; a threshold without the guarantee is marked."""
    lines = [
        "| target recall | delta | threshold | recall | precision | alerts / 1000 | missed | guaranteed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']:g} | {r['delta']:g} | {r['threshold']:.3f} | {_fmt(r['recall'], '.3f')} | "
            f"{_fmt(r['precision'], '.3f')} | {_fmt(r['alert_rate_per_1000'], '.0f')} | "
            f"{r['missed']}/{r['n_pos']} | {'yes' if r['valid'] else 'no: flags all'} |"
        )
    return "\n".join(lines)
