"""The probability blocks of ``results.json``: calibration of ``proba``, coverage of ``levels``, alerts.

Each block is computed only from the rows that carry its field; the others are counted
(``n_without_proba``, ``n_without_levels``, ``unscored``) and left out, so a file without
any of these fields scores exactly as before (no block at all).

* ``calibration`` (rows with ``proba`` over the scheme's labels): ECE, Brier score and log
  loss with bootstrap intervals (:func:`llm_aug.eval.calibration.calibration_metrics`), and
  the reliability curve's bins (``curve``) that the reliability diagrams draw.
* ``conformal`` (rows with ``levels``, the label set ``predict`` writes under a screening
  profile): empirical coverage and mean set size, overall and per gold level.
* ``operating_points`` (rows with ``alerts``, one yes/no per recall target): recall,
  precision, alerts per 1,000 posts and high-risk posts missed. A row without alerts (no
  probability: a failed LLM answer) counts as flagged, as the triage queue puts it first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_aug.core.errors import UserError
from llm_aug.data.schemes import LabelScheme
from llm_aug.eval.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    log_loss,
    reliability_curve,
)
from llm_aug.eval.conformal import coverage_report
from llm_aug.eval.risk_control import HIGH_RISK_LEVEL, high_risk_truth, operating_point

logger = logging.getLogger(__name__)


def _rows_with(records: Mapping[str, dict], ids: Sequence[str], key: str) -> list[int]:
    return [i for i, rid in enumerate(ids) if records[rid].get(key) is not None]


def calibration_block(records: Mapping[str, dict], ids: Sequence[str], gold: Sequence[int], labels: Sequence[int],
                      *, n_boot: int, seed: int, source: str | Path = "predictions") -> dict[str, Any] | None:
    """Calibration metrics of the rows with ``proba``; None when no row has one (or its width is wrong)."""
    have = _rows_with(records, ids, "proba")
    if not have:
        return None
    widths = sorted({len(records[ids[i]]["proba"]) for i in have})
    if widths != [len(labels)]:
        logger.warning("%s: proba rows have %s columns, the scheme has %d labels: no calibration metrics",
                       source, "/".join(map(str, widths)), len(labels))
        return None
    p = np.array([records[ids[i]]["proba"] for i in have], dtype=float)
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)  # rounded to 6 digits when written
    column = {int(label): j for j, label in enumerate(labels)}
    y = np.array([column[int(gold[i])] for i in have])
    return calibration_summary(p, y, n_boot=n_boot, seed=seed, n_without_proba=len(ids) - len(have))


def calibration_summary(proba: np.ndarray, y: np.ndarray, *, n_boot: int, seed: int,
                        n_without_proba: int = 0) -> dict[str, Any]:
    """:func:`calibration_metrics` (point values only with ``n_boot=0``) plus ``n_without_proba`` and ``curve``."""
    if n_boot:
        block = calibration_metrics(proba, y, n_boot=n_boot, seed=seed)
    else:
        block = {"ece": expected_calibration_error(proba, y), "brier": brier_score(proba, y),
                 "log_loss": log_loss(proba, y), "n": len(y), "n_bins": min(15, len(y)), "n_boot": 0,
                 "interval": "percentile", "ci": {}}
    block["n_without_proba"] = n_without_proba
    block["curve"] = reliability_curve(proba, y)
    return block


def conformal_block(records: Mapping[str, dict], ids: Sequence[str], gold: Sequence[int], labels: Sequence[int],
                    *, source: str | Path = "predictions") -> dict[str, Any] | None:
    """Coverage and set size of the rows' ``levels``; None when no row has levels."""
    have = _rows_with(records, ids, "levels")
    if not have:
        return None
    column = {int(label): j for j, label in enumerate(labels)}
    sets = []
    for i in have:
        levels = records[ids[i]]["levels"]
        if not isinstance(levels, list) or any(not isinstance(v, int) or isinstance(v, bool) or v not in column
                                                    for v in levels):
            raise UserError(f"{source}: row {ids[i]!r}: 'levels' must be a list of the scheme's labels "
                            f"{list(labels)}, got {levels!r}")
        sets.append(sorted(column[v] for v in levels))
    block = coverage_report(sets, [gold[i] for i in have], labels)
    block["n_without_levels"] = len(ids) - len(have)
    return block


def high_risk_level(scheme: LabelScheme) -> int:
    """The level at or above which a post is high risk (label 1 for a binary scheme)."""
    return scheme.binary_threshold if scheme.binary_threshold is not None else HIGH_RISK_LEVEL


def alerts_block(records: Mapping[str, dict], ids: Sequence[str], gold: Sequence[int],
                 scheme: LabelScheme) -> list[dict[str, Any]] | None:
    """One operating point per alert name found in the rows' ``alerts``; None when no row has alerts."""
    have = [i for i in _rows_with(records, ids, "alerts") if isinstance(records[ids[i]]["alerts"], dict)]
    if not have:
        return None
    names = list(dict.fromkeys(name for i in have for name in records[ids[i]]["alerts"]))
    y_high = high_risk_truth(list(gold), scheme.labels, high_risk_level(scheme))
    scored = set(have)
    rows = []
    for name in names:
        flagged = np.array([bool(records[rid]["alerts"].get(name)) if i in scored else True
                            for i, rid in enumerate(ids)], dtype=float)
        rows.append({"name": name, **operating_point(flagged, y_high, 0.5), "unscored": len(ids) - len(have)})
    return rows
