"""The triage queue: predictions ordered for a moderator, under a screening profile.

Rows without a probability (a failed or unparseable LLM answer) come first, marked
``unscored``: nothing says they are safe. Then the rest by calibrated high-risk
probability, highest first. A row whose level set straddles the high-risk line is
``uncertain``: the model cannot tell low from high risk for it at the profile's coverage.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_text
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.calibration import calibration_metrics
from llm_aug.eval.conformal import coverage_report
from llm_aug.eval.risk_control import high_risk_truth
from llm_aug.jobs.screening import load_profile, load_scored, screen_rows, summary_on, write_json


class TriageResult(BaseModel):
    """Where the queue went and what it holds; ``evaluation`` only when gold labels were given."""

    model_config = ConfigDict(extra="forbid")
    queue: Path
    jsonl: Path
    summary_path: Path
    n: int
    unscored: int
    uncertain: int
    operating_points: list[dict[str, Any]] = Field(default_factory=list)
    evaluation: dict[str, Any] | None = None


def triage(predictions: str | Path, profile_dir: str | Path, out: str | Path, *,
           gold: str | Path | None = None, set_kind: str = "ordinal") -> TriageResult:
    """Write ``out`` (CSV), ``out``.jsonl and ``out``.summary.json: the queue and its counts."""
    out = Path(out)
    jsonl, summary_path = out.with_suffix(".jsonl"), out.with_suffix(".summary.json")
    check_outputs(output=out, inputs=(predictions, gold))
    profile, calibrator, scored, screened, summary = _screen(profile_dir, predictions, gold, set_kind)
    rows = _queue(scored, screened)
    _write(out, jsonl, rows, [k for k in (screened[0]["alerts"] if screened else {})])
    evaluation = _evaluate(profile, calibrator, scored, screened) if scored.y is not None else None
    result = TriageResult(queue=out, jsonl=jsonl, summary_path=summary_path, n=len(rows),
                          unscored=len(scored.unscored), uncertain=summary["uncertain"],
                          operating_points=summary["operating_points"], evaluation=evaluation)
    write_json(summary_path, result.model_dump(mode="json"))
    write_manifest(out.parent, "triage", data_files=[p for p in (predictions, gold) if p],
                   name=f"{out.stem}.manifest.json",
                   config={"profile": str(profile_dir), "set_kind": set_kind})
    return result


def _screen(profile_dir: str | Path, predictions: str | Path, gold: str | Path | None,
            set_kind: str) -> tuple[Any, Any, Any, list[dict[str, Any]], dict[str, Any]]:
    """(profile, calibrator, scored rows, screened rows, summary_on) for a predictions file."""
    profile, calibrator = load_profile(profile_dir)
    scored = load_scored(predictions, scheme_for_task(profile.task), gold)
    screened = screen_rows(profile, calibrator, scored.proba, set_kind)
    p_high = np.array([r["p_high"] for r in screened])
    y_high = (high_risk_truth([profile.labels[j] for j in scored.y], profile.labels, profile.level)
              if scored.y is not None else None)
    return profile, calibrator, scored, screened, summary_on(profile, screened, y_high, p_high)


def evaluate_split(profile_dir: str | Path, predictions: str | Path, gold: str | Path,
                   set_kind: str = "ordinal") -> dict[str, Any]:
    """A profile on a labelled evaluation split: per target recall, precision, alerts per 1,000,
    posts missed; the sets' coverage; calibration before and after. Nothing is written."""
    profile, calibrator, scored, screened, summary = _screen(profile_dir, predictions, gold, set_kind)
    return {**summary, "unscored": len(scored.unscored), **_evaluate(profile, calibrator, scored, screened)}


def annotate_predictions(path: str | Path, profile_dir: str | Path, set_kind: str = "ordinal") -> int:
    """Add ``p_high``, ``levels``, ``levels_text`` and ``alerts`` to each row of ``path`` that has ``proba``.

    The file (JSONL or Parquet) is rewritten whole (temp file, rename); rows without
    probabilities are kept as they are. Returns the number of rows annotated.
    """
    import json

    from llm_aug.data.io import read_objects
    from llm_aug.data.parquet import is_parquet, write_objects

    path = Path(path)
    profile, calibrator = load_profile(profile_dir)
    rows = [obj for _, obj in read_objects(path)]
    idx = [i for i, r in enumerate(rows) if r.get("proba") is not None]
    if idx:
        proba = np.array([rows[i]["proba"] for i in idx], dtype=float)
        if proba.shape[1] != len(profile.labels):
            raise UserError(f"{path}: {proba.shape[1]} probabilities per row, the profile has "
                            f"{len(profile.labels)} labels ({profile.task})")
        for i, screened in zip(idx, screen_rows(profile, calibrator, proba, set_kind)):
            rows[i].update(screened)
    if is_parquet(path):
        write_objects(path, rows)
    else:
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(idx)


def _queue(scored: Any, screened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unscored rows first, then by high-risk probability (ties keep input order)."""
    first = [{"id": i, "status": "unscored", "p_high": None, "levels": None, "levels_text": "",
              "uncertain": True, "alerts": {}, **_post(scored.records[i])} for i in scored.unscored]
    scored_rows = [{"id": i, "status": "scored", **s, **_post(scored.records[i])}
                   for i, s in zip(scored.ids, screened)]
    scored_rows.sort(key=lambda r: -r["p_high"])
    return [{"rank": n, **row} for n, row in enumerate(first + scored_rows, start=1)]


def _post(record: dict[str, Any]) -> dict[str, Any]:
    return {"pred": record.get("pred"), "error": record.get("error"), "text": record.get("text", "")}


def _write(out: Path, jsonl: Path, rows: list[dict[str, Any]], alert_names: list[str]) -> None:
    import json

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "id", "status", "p_high", "pred", "levels", "uncertain", *alert_names, "text"])
    for r in rows:
        p = "" if r["p_high"] is None else f"{r['p_high']:.4f}"
        alerts = ["yes" if r["alerts"].get(a, r["status"] == "unscored") else "" for a in alert_names]
        writer.writerow([r["rank"], r["id"], r["status"], p, "" if r["pred"] is None else r["pred"],
                         r["levels_text"], "yes" if r["uncertain"] else "", *alerts, r["text"]])
    atomic_write_text(out, buf.getvalue())
    atomic_write_text(jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _evaluate(profile: Any, calibrator: Any, scored: Any, screened: list[dict[str, Any]]) -> dict[str, Any]:
    """On a labelled evaluation split: calibration before/after and the sets' coverage."""
    column = {label: j for j, label in enumerate(profile.labels)}
    sets = [[column[lv] for lv in r["levels"]] for r in screened]
    cal = calibrator.predict_proba(scored.proba) if len(scored.ids) else scored.proba
    return {"calibration_before": calibration_metrics(scored.proba, scored.y),
            "calibration_after": calibration_metrics(cal, scored.y),
            "coverage": coverage_report(sets, scored.y, profile.labels)}
