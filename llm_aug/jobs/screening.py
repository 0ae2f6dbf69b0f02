"""Risk screening jobs: fit a screening profile on calibration predictions, apply it to new ones.

:func:`calibrate_threshold` reads predictions with ``proba`` (any classifier's ``predict``
output, a model directory's ``val.jsonl``, or LLM ``classify`` rows with ``--samples N`` or
``--score-labels``) and their gold labels, and fits on them, never on test unless asked:

- an optional probability calibration (``none``/``sigmoid``/``isotonic``/``temperature``),
  cross-fitted over the calibration split so the thresholds below see calibrated scores
  of rows the calibrator did not learn from;
- for each recall target, the high-risk threshold whose recall is >= the target with
  probability >= 1 - delta (Learn-then-Test through MAPIE, :mod:`llm_aug.eval.risk_control`);
- conformal level sets with coverage 1 - alpha (:mod:`llm_aug.eval.conformal`).

It writes ``screening.json`` (and ``calibrator.pkl``) in a profile directory.
:func:`apply_profile` turns predictions into a triage queue: high-risk probability first,
sets that straddle the high-risk line flagged uncertain, unscored rows on top.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llm_aug.classifiers.calibration import CALIBRATION_METHODS, ProbaCalibrator
from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_binary, atomic_write_text, data_digest, file_sha256
from llm_aug.core.manifest import write_manifest
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import LabelScheme, scheme_for_task
from llm_aug.eval.calibration import calibration_metrics
from llm_aug.eval.conformal import ConformalSets, fit_conformal, format_set, predict_sets
from llm_aug.eval.predictions import align, read_predictions
from llm_aug.eval.risk_control import (
    ThresholdChoice,
    high_risk_probability,
    high_risk_truth,
    operating_point,
    parse_recall_target,
    recall_threshold,
)

log = logging.getLogger(__name__)

PROFILE_FILE, CALIBRATOR_FILE = "screening.json", "calibrator.pkl"
HIGH_RISK_LEVEL = 6  # SOS-1K: levels 6-10 are high risk (the binary task's 1)
SET_KINDS = ("marginal", "mondrian", "ordinal")
CV_FOLDS = 5


class ScreeningProfile(BaseModel):
    """``screening.json``: what was fitted, on which rows, and the operating points."""

    model_config = ConfigDict(extra="forbid")
    task: str
    labels: list[int]
    level: int = Field(HIGH_RISK_LEVEL, description="levels >= this are high risk (fine task)")
    calibrate: str = "none"
    calibration_split: dict[str, Any] = Field(default_factory=dict, description="files, sha256, rows used")
    delta: float
    thresholds: list[ThresholdChoice] = Field(default_factory=list)
    sets: list[ConformalSets] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict, description="on the calibration split (cross-fitted)")


class Scored(BaseModel):
    """Rows of a predictions file with a probability row each (others counted in ``unscored``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    ids: list[str]
    proba: Any  # np.ndarray (n, k)
    y: Any = None  # np.ndarray of column indices, when gold was given
    unscored: list[str] = Field(default_factory=list)
    records: dict[str, dict] = Field(default_factory=dict)


def load_scored(predictions: str | Path, scheme: LabelScheme, gold: str | Path | None = None) -> Scored:
    """Predictions (with gold aligned by id when given); rows without ``proba`` set aside."""
    preds = read_predictions(predictions)
    records = {str(p["id"]): p for p in preds}
    order = list(records)
    y_by_id: dict[str, int] = {}
    if gold is not None:
        gold_data = load_dataset(gold, scheme)
        labels, _, order = align(preds, gold_data, source=predictions)
        y_by_id = dict(zip(order, labels))
    k = len(scheme.labels)
    ids = [i for i in order if _proba_ok(records[i].get("proba"), k, predictions, i)]
    unscored = [i for i in order if i not in set(ids)]
    proba = np.array([records[i]["proba"] for i in ids], dtype=float).reshape(len(ids), k)
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    column = {label: j for j, label in enumerate(scheme.labels)}
    y = np.array([column[y_by_id[i]] for i in ids]) if gold is not None else None
    return Scored(ids=ids, proba=proba, y=y, unscored=unscored, records=records)


def _proba_ok(proba: Any, k: int, path: str | Path, row_id: str) -> bool:
    if proba is None:
        return False
    if len(proba) != k:
        raise UserError(f"{path}: row {row_id!r} has {len(proba)} probabilities, the scheme has {k} labels")
    return True


def _cross_fitted(proba: np.ndarray, y: np.ndarray, method: str, seed: int) -> np.ndarray:
    """Each row calibrated by a map fitted on the other folds (what new rows will look like)."""
    if method == "none":
        return proba
    from sklearn.model_selection import KFold

    out = np.empty_like(proba)
    for fit_idx, held in KFold(CV_FOLDS, shuffle=True, random_state=seed).split(proba):
        out[held] = ProbaCalibrator(method).fit(proba[fit_idx], y[fit_idx]).predict_proba(proba[held])
    return out


def _parse_targets(targets: Sequence[str | float]) -> list[float]:
    """``recall=0.95`` or ``0.95`` -> 0.95; one-line UserError naming the bad ``--target``."""
    out = []
    for t in targets:
        try:
            out.append(parse_recall_target(t))
        except ValueError as exc:
            raise UserError(f"--target {str(t)!r}: {exc}") from None
    return out


def fit_profile(proba: np.ndarray, y: np.ndarray, scheme: LabelScheme, *, targets: Sequence[str | float],
                delta: float = 0.1, coverage: float = 0.9, calibrate: str = "none", level: int = HIGH_RISK_LEVEL,
                seed: int = 0) -> tuple[ScreeningProfile, ProbaCalibrator]:
    """The profile and calibration map for calibration rows (``proba`` over the scheme's labels, ``y`` columns)."""
    if calibrate not in CALIBRATION_METHODS:
        raise UserError(f"--calibrate {calibrate!r}: use one of {', '.join(CALIBRATION_METHODS)}")
    if not 0 < delta < 1 or not 0 < coverage < 1:
        raise UserError("--delta and --coverage lie between 0 and 1")
    cal = _cross_fitted(proba, y, calibrate, seed)
    labels = scheme.labels
    p_high = high_risk_probability(cal, labels, level)
    y_high = high_risk_truth([labels[j] for j in y], labels, level)
    choices = [recall_threshold(p_high, y_high, t, delta) for t in _parse_targets(targets)]
    sets = [fit_conformal(cal, y, alpha=1 - coverage, kind=kind) for kind in SET_KINDS]
    profile = ScreeningProfile(
        task=scheme.task, labels=labels, level=level, calibrate=calibrate, delta=delta, thresholds=choices,
        sets=sets, metrics={"before": calibration_metrics(proba, y),
                            "after": calibration_metrics(cal, y) if calibrate != "none" else None})
    return profile, ProbaCalibrator(calibrate).fit(proba, y)


def calibrate_threshold(predictions: str | Path, gold: str | Path, out_dir: str | Path, *,
                        task: str, targets: Sequence[str | float] = ("recall=0.9", "recall=0.95", "recall=0.99"),
                        delta: float = 0.1, coverage: float = 0.9, calibrate: str = "none",
                        level: int = HIGH_RISK_LEVEL, seed: int = 0) -> ScreeningProfile:
    """Fit a :class:`ScreeningProfile` on (``predictions``, ``gold``) and write it to ``out_dir``."""
    scheme = scheme_for_task(task)
    scored = load_scored(predictions, scheme, gold)
    if len(scored.ids) < 20:
        raise UserError(f"{predictions}: {len(scored.ids)} rows with probabilities; calibration needs "
                        "at least 20 (write proba: a classifier's predict, or classify --samples N / --score-labels)")
    profile, calibrator = fit_profile(scored.proba, scored.y, scheme, targets=targets, delta=delta,
                                      coverage=coverage, calibrate=calibrate, level=level, seed=seed)
    profile.calibration_split = _split_info(predictions, gold, scored)
    _save(Path(out_dir), profile, calibrator)
    write_manifest(Path(out_dir), "calibrate-threshold", data_files=[predictions, gold], seed=seed,
                   name="screening.manifest.json",
                   config={"task": scheme.task, "targets": [str(t) for t in targets], "delta": delta,
                           "coverage": coverage, "calibrate": calibrate, "level": level})
    return profile


def _split_info(predictions: str | Path, gold: str | Path, scored: Scored) -> dict[str, Any]:
    return {"predictions": str(predictions), "predictions_sha256": file_sha256(predictions),
            "gold": str(gold), "gold_sha256": data_digest(gold), "n": len(scored.ids),
            "unscored": len(scored.unscored),
            "calibrator_fit": f"cross-fitted over {CV_FOLDS} folds for the thresholds and sets; "
                              "the saved map is fitted on every row"}


def _save(out: Path, profile: ScreeningProfile, calibrator: ProbaCalibrator) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_binary(out / CALIBRATOR_FILE, lambda fh: pickle.dump(calibrator, fh, protocol=pickle.HIGHEST_PROTOCOL))
    atomic_write_text(out / PROFILE_FILE, profile.model_dump_json(indent=2) + "\n")


def load_profile(path: str | Path) -> tuple[ScreeningProfile, ProbaCalibrator]:
    """A profile directory (or its ``screening.json``) and its calibrator."""
    path = Path(path)
    folder = path.parent if path.name == PROFILE_FILE else path
    if not (folder / PROFILE_FILE).is_file():
        raise UserError(f"{path}: no {PROFILE_FILE}; make one with `llm-aug calibrate-threshold`")
    try:
        profile = ScreeningProfile.model_validate_json((folder / PROFILE_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{folder / PROFILE_FILE}: not a screening profile ({str(exc).splitlines()[0]})") from None
    with (folder / CALIBRATOR_FILE).open("rb") as fh:
        calibrator = pickle.load(fh)  # noqa: S301 - written by _save
    return profile, calibrator


def screen_rows(profile: ScreeningProfile, calibrator: ProbaCalibrator, proba: np.ndarray,
                set_kind: str = "ordinal") -> list[dict[str, Any]]:
    """Per row: calibrated high-risk probability, the level set, alerts per target, uncertainty."""
    cal = calibrator.predict_proba(proba) if len(proba) else proba
    p_high = high_risk_probability(cal, profile.labels, profile.level)
    sets = next((s for s in profile.sets if s.kind == set_kind), profile.sets[0])
    level_sets = predict_sets(sets, cal) if len(cal) else []
    rows = []
    for i, members in enumerate(level_sets):
        chosen = [profile.labels[j] for j in members]
        straddles = any(lv >= profile.level for lv in chosen) and any(lv < profile.level for lv in chosen)
        rows.append({"p_high": round(float(p_high[i]), 6), "levels": chosen,
                     "levels_text": format_set(profile.labels, members),
                     "alerts": {f"recall>={c.target:g}": bool(p_high[i] >= c.threshold) for c in profile.thresholds},
                     "uncertain": straddles or len(chosen) == 0})
    return rows


def _uncalibrated_note(profile: ScreeningProfile) -> str:
    return "" if profile.calibrate != "none" else " (probabilities not recalibrated)"


def profile_table(profile: ScreeningProfile) -> str:
    """The operating points as Markdown: target, threshold, whether the guarantee holds."""
    lines = [f"high risk = level >= {profile.level}; delta = {profile.delta:g}{_uncalibrated_note(profile)}", "",
             "| recall target | threshold | guarantee |", "|---|---|---|"]
    for c in profile.thresholds:
        verdict = "holds" if c.valid else (c.note or "none found: flags every post")
        lines.append(f"| {c.target:g} | {c.threshold:.4f} | {verdict} |")
    return "\n".join(lines)


def summary_on(profile: ScreeningProfile, screened: list[dict[str, Any]], y_high: np.ndarray | None,
               p_high: np.ndarray) -> dict[str, Any]:
    """Alerts per operating point; with gold: recall, precision, alert rate, posts missed."""
    out: dict[str, Any] = {"n": len(screened), "uncertain": sum(r["uncertain"] for r in screened),
                           "operating_points": []}
    for c in profile.thresholds:
        row: dict[str, Any] = {"target": c.target, "threshold": c.threshold, "valid": c.valid,
                               "flagged": int(sum(p_high >= c.threshold))}
        if y_high is not None:
            row.update(operating_point(p_high, y_high, c.threshold))
        out["operating_points"].append(row)
    return out


def write_json(path: Path, data: Any) -> None:
    """One JSON file, written whole."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
