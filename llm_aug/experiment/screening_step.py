"""A step's risk screening: a profile fitted on val predictions, applied to the eval split's.

The profile (calibration map, recall-guaranteed thresholds, conformal level sets;
:func:`llm_aug.jobs.screening.fit_profile`) is fitted on the step's predictions of val.
When the eval split is val, those are the very posts being scored, so val is cross-fitted:
``folds`` stratified folds (fewer when the smallest level has fewer posts), a profile fitted
on the other folds screens each fold, and no val post is screened by a profile that saw it.
On test, one profile fitted on every val post screens the test posts (the step predicted val
for it: ``val_predictions.jsonl``).

Writes ``screened.jsonl`` (per eval post: p_high, levels, alerts, uncertain, the profile that
screened it) and ``screening.json`` (each profile and the post ids it was fitted on and
applied to); returns the ``screening`` block of results.json. Rows without probabilities (a
failed LLM answer) are counted as ``unscored`` and flagged at every target, as the triage
queue puts them first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_aug.core.files import PREDICTIONS_FILE, atomic_write_text
from llm_aug.data.io import Dataset
from llm_aug.data.schemes import LabelScheme, scheme_for_task
from llm_aug.eval.conformal import coverage_report
from llm_aug.eval.predictions import align, read_predictions
from llm_aug.eval.probability_scores import calibration_summary
from llm_aug.eval.risk_control import high_risk_truth, operating_point
from llm_aug.experiment.config import ExperimentConfig, LLMSystem, ScreeningSettings
from llm_aug.experiment.resolve import ResolvedConfig
from llm_aug.experiment.step import Step

log = logging.getLogger(__name__)

VAL_PREDICTIONS_FILE = "val_predictions.jsonl"
SCREENED_FILE = "screened.jsonl"
PROFILES_FILE = "screening.json"
MIN_ROWS = 20  # as calibrate-threshold: fewer calibration posts give no usable profile
KINDS = ("marginal", "mondrian", "ordinal")
NO_PROBA = "no probabilities"


def settings_for(step: Step, cfg: ExperimentConfig) -> ScreeningSettings | None:
    """The screening settings that apply to ``step`` (None: the step is not screened)."""
    s = cfg.screening
    if s is None or (s.systems is not None and step.system.name not in s.systems):
        return None
    return s


def screening_manifest(res: ResolvedConfig) -> dict[str, Any] | None:
    """What the run's manifest records of screening: which split calibrated, and how."""
    s = res.config.screening
    if s is None:
        return None
    cross = res.config.eval_split == "val"
    how = (f"val, cross-fitted over {s.folds} stratified folds (fewer when a level has fewer posts): no val "
           "post is screened by a profile fitted on it" if cross else
           f"val (every post), applied to {res.config.eval_split}")
    return {"screening": {"calibration_split": "val", "eval_split": res.config.eval_split, "cross_fit": cross,
                          "folds": s.folds if cross else None, "how": how}}


def needs_val_predictions(step: Step, cfg: ExperimentConfig) -> bool:
    """Whether the step must also predict val: it is screened and val is not the eval split."""
    return settings_for(step, cfg) is not None and cfg.eval_split != "val" and _may_have_proba(step)


def _may_have_proba(step: Step) -> bool:
    s = step.system
    return not isinstance(s, LLMSystem) or s.samples > 1 or s.score_labels


@dataclass
class Scored:
    """The rows of a predictions file with a probability row each, aligned with gold."""

    ids: list[str]  # every gold row, in gold order
    labels: list[int]  # gold label per id
    rows: np.ndarray  # indices into ids of the rows with proba
    proba: np.ndarray  # (len(rows), k)
    y: np.ndarray  # gold column per scored row


def _scored(path: Path, gold: Dataset, scheme: LabelScheme) -> Scored | str:
    """Aligned rows with proba, or why there are none (a note for the report)."""
    preds = read_predictions(path)
    labels, _, ids = align(preds, gold, source=path)
    by_id = {p["id"]: p for p in preds}
    rows = [i for i, rid in enumerate(ids) if by_id[rid].get("proba") is not None]
    if not rows:
        return NO_PROBA
    widths = sorted({len(by_id[ids[i]]["proba"]) for i in rows})
    if widths != [len(scheme.labels)]:
        return f"probabilities over {'/'.join(map(str, widths))} labels, the scheme has {len(scheme.labels)}"
    proba = np.array([by_id[ids[i]]["proba"] for i in rows], dtype=float)
    proba /= np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    column = {label: j for j, label in enumerate(scheme.labels)}
    return Scored(ids, labels, np.array(rows, dtype=int), proba, np.array([column[labels[i]] for i in rows]))


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (fit, held-out) index pairs; fewer folds when the smallest level has fewer posts."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.unique(y, return_counts=True)[1].min())
    n = max(2, min(folds, smallest))
    if n < folds:
        log.info("screening: cross-fitting val with %d folds, not %d: the smallest level has %d posts",
                 n, folds, smallest)
    with warnings.catch_warnings():  # a level with fewer posts than folds: expected, logged above
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(StratifiedKFold(n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def screen_step(step: Step, settings: ScreeningSettings, work: Path, gold: Dataset, val: Dataset | None,
                eval_split: str, n_boot: int) -> dict[str, Any]:
    """Screen the step's eval predictions; write screened.jsonl and screening.json; return the block."""
    scheme = scheme_for_task(step.task)
    base = {"calibration_split": "val", "calibrate": settings.calibrate, "delta": settings.delta,
            "coverage": settings.coverage, "targets": settings.targets}
    evaluated = _scored(work / PREDICTIONS_FILE, gold, scheme)
    if isinstance(evaluated, str):
        return {**base, "note": evaluated}
    if eval_split == "val":
        cal = evaluated
        pairs = _folds(cal.y, settings.folds, step.seed)
        base["cross_fit"] = {"folds": len(pairs), "seed": step.seed, "stratified": True}
    else:
        assert val is not None
        cal = _scored(work / VAL_PREDICTIONS_FILE, val, scheme)
        if isinstance(cal, str):
            return {**base, "note": f"val: {cal}"}
        pairs = [(np.arange(len(cal.rows)), np.arange(len(evaluated.rows)))]
        base["cross_fit"] = None
    smallest = min(len(fit) for fit, _ in pairs)
    if smallest < MIN_ROWS:
        return {**base, "note": f"too few val posts with probabilities ({smallest} to fit on; {MIN_ROWS} needed)"}
    return {**base, **_apply(step, settings, scheme, cal, evaluated, pairs, work, n_boot)}


def _apply(step: Step, settings: ScreeningSettings, scheme: LabelScheme, cal: Scored, ev: Scored,
           pairs: list[tuple[np.ndarray, np.ndarray]], work: Path, n_boot: int) -> dict[str, Any]:
    """Fit a profile per pair on ``cal`` rows, screen the paired ``ev`` rows, pool what was screened."""
    from llm_aug.jobs import screening as profiles  # sklearn and MAPIE: only when a step is screened

    screened: dict[int, dict[str, Any]] = {}
    sets: dict[str, dict[int, list[int]]] = {k: {} for k in KINDS}
    after = np.zeros_like(ev.proba)
    saved, thresholds = [], []
    column = {label: j for j, label in enumerate(scheme.labels)}
    for fold, (fit, held) in enumerate(pairs):
        with _quiet_sets():
            profile, calibrator = profiles.fit_profile(
                cal.proba[fit], cal.y[fit], scheme, targets=settings.targets, delta=settings.delta,
                coverage=settings.coverage, calibrate=settings.calibrate, seed=step.seed)
        for kind in KINDS:
            for i, row in zip(held, profiles.screen_rows(profile, calibrator, ev.proba[held], kind)):
                sets[kind][int(i)] = [column[lv] for lv in row["levels"]]
                if kind == "ordinal":  # what predict writes under a profile
                    screened[int(i)] = {**row, "profile": fold}
        after[held] = calibrator.predict_proba(ev.proba[held])
        thresholds.append(profile.thresholds)
        saved.append({"profile": fold, "fit_ids": [cal.ids[cal.rows[j]] for j in fit],
                      "screened_ids": [ev.ids[ev.rows[j]] for j in held],
                      "screening": profile.model_dump(mode="json")})
    _write(work, ev, screened, saved)
    order = range(len(ev.rows))
    block: dict[str, Any] = {
        "n_cal": int(len(cal.rows)), "n": len(ev.ids), "unscored": len(ev.ids) - len(ev.rows),
        "level": saved[0]["screening"]["level"],
        "operating_points": _operating_points(scheme, ev, screened, thresholds),
        "sets": {k: coverage_report([sets[k][i] for i in order], [ev.labels[j] for j in ev.rows], scheme.labels)
                 for k in KINDS},
        "calibration_after": (calibration_summary(after, ev.y, n_boot=n_boot, seed=step.seed)
                              if settings.calibrate != "none" else None),
        "profiles_file": PROFILES_FILE, "screened_file": SCREENED_FILE,
    }
    notes = sorted({n for p in saved for n in _profile_notes(p["screening"])})
    if notes:
        block["notes"] = notes
    return block


@contextlib.contextmanager
def _quiet_sets() -> Iterator[None]:
    """Mondrian's note on rare levels, once per fold, would flood the log: it goes into the block instead."""
    logger = logging.getLogger("llm_aug.eval.conformal")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _profile_notes(profile: dict[str, Any]) -> list[str]:
    """The notes of a fitted profile: sets that could not be calibrated, targets that cannot be certified."""
    notes = [f"{s['kind']} sets: {s['note']}" for s in profile.get("sets", []) if s.get("note")]
    return notes + [t["note"] for t in profile.get("thresholds", []) if t.get("note")]


def _operating_points(scheme: LabelScheme, ev: Scored, screened: dict[int, dict[str, Any]],
                      thresholds: list[list[Any]]) -> list[dict[str, Any]]:
    """Per target, the pooled alerts (each post flagged by its own profile; unscored posts flagged)."""
    y_high = high_risk_truth(ev.labels, scheme.labels)
    by_row = {int(ev.rows[i]): row for i, row in screened.items()}
    out = []
    for t, choice in enumerate(thresholds[0]):
        name = f"recall>={choice.target:g}"
        flagged = np.array([by_row[i]["alerts"][name] if i in by_row else True for i in range(len(ev.ids))],
                           dtype=float)
        fold_choices = [fold[t] for fold in thresholds]
        out.append({"name": name, "target": choice.target, "thresholds": [c.threshold for c in fold_choices],
                    "valid": all(c.valid for c in fold_choices),
                    **operating_point(flagged, y_high, 0.5), "unscored": len(ev.ids) - len(by_row)})
    return out


def _write(work: Path, ev: Scored, screened: dict[int, dict[str, Any]], saved: list[dict[str, Any]]) -> None:
    lines = [json.dumps({"id": ev.ids[ev.rows[i]], **screened[i]}, ensure_ascii=False) for i in sorted(screened)]
    atomic_write_text(work / SCREENED_FILE, "".join(line + "\n" for line in lines))
    atomic_write_text(work / PROFILES_FILE, json.dumps({"profiles": saved}, indent=2, ensure_ascii=False) + "\n")
