"""The risk-screening part of the report pages: calibration, operating points, level sets, reliability.

Shared by ``llm-aug compare`` (:mod:`llm_aug.eval.report`) and ``llm-aug experiment report``.
Each function takes ``entries``, (system name, results.json) pairs, and reads:

* ``calibration`` (``evaluate`` on rows with ``proba``): ECE, Brier, log loss and their CIs,
  the reliability bins;
* ``screening`` (an experiment's profile fitted on val, cross-fitted when val is the eval
  split): the calibration split, the operating points with their thresholds and whether
  the recall guarantee holds, the marginal/Mondrian/ordinal sets, ECE after calibration;
* else ``operating_points`` and ``conformal`` (``evaluate`` on rows with ``alerts`` and
  ``levels``, as ``predict`` writes them under a profile).

A system without probabilities gets a row saying so, never an error.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from llm_aug.eval.plots import plot_reliability

Table = tuple[list[str], list[list[str]]]
Entries = Sequence[tuple[str, dict[str, Any]]]
NO_PROBA = "no probabilities"


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def _with_ci(block: dict[str, Any], key: str) -> str:
    ci = (block.get("ci") or {}).get(key)
    text = _f(block.get(key))
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _screening(results: dict[str, Any]) -> dict[str, Any]:
    block = results.get("screening")
    return block if isinstance(block, dict) else {}


def has_screening(entries: Entries) -> bool:
    """Whether any entry carries a calibration, screening, conformal or operating-point block."""
    keys = ("calibration", "screening", "conformal", "operating_points")
    return any(results.get(k) for _, results in entries for k in keys)


def calibrated_on(results: dict[str, Any]) -> str:
    """Where the screening profile was fitted (``val``, ``val, cross-fitted (5 folds)``), or a dash."""
    scr = _screening(results)
    if not scr.get("calibration_split"):
        return "—"
    cross = scr.get("cross_fit") or {}
    return f"{scr['calibration_split']}, cross-fitted ({cross['folds']} folds)" if cross else scr["calibration_split"]


def calibration_table(entries: Entries) -> Table | None:
    """Per system: ECE (95% CI) on the scored split, the calibrated-model range, Brier, log loss, ECE after."""
    if not has_screening(entries):
        return None
    after = any(_screening(r).get("calibration_after") for _, r in entries)
    head = ["System", "posts with proba", "ECE [95% CI]", "ECE if calibrated", "Brier [95% CI]",
            "log loss [95% CI]", *(["ECE after calibration [95% CI]", "calibrated on"] if after else [])]
    rows = []
    for name, results in entries:
        cal = results.get("calibration")
        if not isinstance(cal, dict):
            note = _screening(results).get("note") or NO_PROBA
            rows.append([name, note] + ["—"] * (len(head) - 2))
            continue
        left = f" ({cal['n_without_proba']} without)" if cal.get("n_without_proba") else ""
        band = cal.get("ece_if_calibrated")
        row = [name, f"{cal.get('n')}{left}", _with_ci(cal, "ece"),
               f"{band[0]:.3f}–{band[1]:.3f}" if isinstance(band, list) and len(band) == 2 else "—",
               _with_ci(cal, "brier"), _with_ci(cal, "log_loss")]
        if after:
            scr = _screening(results)
            post = scr.get("calibration_after")
            row += [f"{_with_ci(post, 'ece')} ({scr.get('calibrate')})" if isinstance(post, dict) else
                    ("none asked" if scr.get("calibrate") == "none" else "—"), calibrated_on(results)]
        rows.append(row)
    return head, rows


def _operating_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return _screening(results).get("operating_points") or results.get("operating_points") or []


def _guarantee(op: dict[str, Any]) -> str:
    if "valid" not in op:
        return "—"
    return "yes" if op["valid"] else "no: flags all"


def _threshold(op: dict[str, Any]) -> str:
    values = op.get("thresholds")
    if not values:
        return "—"
    if len(values) == 1:
        return _f(values[0])
    lo, hi = _f(min(values)), _f(max(values))
    return f"{lo} ({len(values)} folds)" if lo == hi else f"{lo}–{hi} ({len(values)} folds)"


def operating_table(entries: Entries) -> Table | None:
    """Per system and recall target: threshold, recall, precision, alerts per 1,000, missed, guaranteed."""
    if not any(_operating_rows(r) for _, r in entries):
        return None
    profiled = any(_screening(r) for _, r in entries)  # else alerts from predictions: no threshold known
    head = ["System", "target", *(["calibrated on", "threshold"] if profiled else []), "recall", "precision",
            "alerts / 1,000", "missed", *(["guaranteed"] if profiled else [])]
    rows = []
    for name, results in entries:
        ops = _operating_rows(results)
        if not ops:
            rows.append([name, _screening(results).get("note") or NO_PROBA] + ["—"] * (len(head) - 2))
        for op in ops:
            rate = op.get("alert_rate_per_1000")
            rows.append([name, str(op.get("name")), *([calibrated_on(results), _threshold(op)] if profiled else []),
                         _f(op.get("recall")), _f(op.get("precision")), _f(rate, 0),
                         f"{op.get('missed')}/{op.get('n_pos')}", *([_guarantee(op)] if profiled else [])])
    return head, rows


def _set_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sets = _screening(results).get("sets")
    if isinstance(sets, dict) and sets:
        return list(sets.items())
    conformal = results.get("conformal")
    return [("levels of the predictions", conformal)] if isinstance(conformal, dict) else []


def sets_table(entries: Entries) -> Table | None:
    """Per system and kind of level set: coverage and mean set size on the scored split."""
    if not any(_set_rows(r) for _, r in entries):
        return None
    profiled = any(_screening(r) for _, r in entries)
    head = ["System", "sets", *(["target coverage"] if profiled else []), "coverage", "mean size", "posts"]
    rows = []
    for name, results in entries:
        kinds = _set_rows(results)
        if not kinds:
            rows.append([name, _screening(results).get("note") or NO_PROBA] + ["—"] * (len(head) - 2))
        target = [_f(_screening(results).get("coverage"), 2)] if profiled else []
        for kind, rep in kinds:
            rows.append([name, kind, *target, _f(rep.get("coverage")), _f(rep.get("mean_size"), 2), str(rep.get("n"))])
    return head, rows


def reliability_curves(entries: Entries) -> dict[str, list[dict[str, Any]]]:
    """Reliability bins per system, and per calibrated system its curve after calibration."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, results in entries:
        curve = (results.get("calibration") or {}).get("curve")
        if curve:
            curves[name] = curve
        scr = _screening(results)
        after = (scr.get("calibration_after") or {}).get("curve")
        if after:
            curves[f"{name} + {scr.get('calibrate')}"] = after
    return curves


def reliability_png(entries: Entries, title: str) -> bytes | None:
    """One reliability diagram of every system with probabilities (PNG bytes); None when none has them."""
    curves = reliability_curves(entries)
    if not curves:
        return None
    buf = io.BytesIO()
    plot_reliability(curves, buf, title)
    return buf.getvalue()


SCREENING_NOTE = (
    "ECE: top-label expected calibration error over 15 equal-mass bins, with a 95% bootstrap interval "
    "(spread, not a coverage guarantee); 'ECE if calibrated' is the range a perfectly calibrated model with "
    "the same confidences shows at this size: an ECE inside it is no evidence of miscalibration. Recall "
    "targets: the threshold's recall of high-risk posts is >= the target with probability >= 1 - delta over "
    "draws of the calibration split, for posts exchangeable with it; one scored split can still fall below. "
    "Level sets cover the gold level on average over posts (marginal, ordinal) or per level (Mondrian). "
    "A split that calibrated and is also scored is cross-fitted: no post is scored by a profile fitted on it.")


def screening_data(entries: Entries, reliability_file: str) -> dict[str, Any]:
    """What the pages' screening section shows: the three tables, the note and the reliability figure's file.

    ``reliability`` is None when no system has probabilities; its ``png`` is filled in by the
    caller once the figure is drawn (:func:`reliability_png`).
    """
    return {"calibration": calibration_table(entries), "operating": operating_table(entries),
            "sets": sets_table(entries), "note": SCREENING_NOTE,
            "reliability": {"file": reliability_file, "png": None} if reliability_curves(entries) else None}
