"""The runs a comparison reads: results.json, per-item data, the best run and the paired test.

:func:`load_run` reads a run directory's ``results.json`` (written by
:func:`llm_aug.eval.results.write_results`). Per-item gold and predictions come from its
``items`` block or, failing that, from the run's predictions file when that file carries
a ``gold`` (or ``label``) field per line; :func:`paired_vs_best` bootstraps a run against
the best one on them. Used by :mod:`llm_aug.eval.report` and ``llm-aug experiment report``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE
from llm_aug.eval.bootstrap import paired_bootstrap
from llm_aug.eval.metrics import LOWER_IS_BETTER
from llm_aug.eval.predictions import _is_int, read_predictions
from llm_aug.eval.results import RESULTS_FILE

logger = logging.getLogger(__name__)

# Every results.json has these; the ordinal metrics come on top for ordinal schemes.
BASE_METRICS = ("accuracy", "weighted_f1", "macro_f1")


@dataclass
class RunRecord:
    """One run directory's results.json (and per-item data when available)."""

    dir: Path
    name: str
    results: dict
    items: dict[str, tuple[int, int | None]] | None


def _items_from_predictions(run_dir: Path, results: dict) -> dict | None:
    """Per-item (gold, pred) from the run's predictions file, if it carries gold."""
    named = Path(str(results.get("predictions") or PREDICTIONS_FILE))
    for path in (named, run_dir / named.name, run_dir / PREDICTIONS_FILE):
        if path.is_file():
            recs = read_predictions(path)
            key = next((k for k in ("gold", "label") if all(_is_int(r.get(k)) for r in recs)), None)
            return {r["id"]: (int(r[key]), r["pred"]) for r in recs} if key else None
    return None


def load_run(run_dir: Path) -> RunRecord:
    """Read ``run_dir/results.json``; UserError when it is missing or unreadable."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: no {RESULTS_FILE} (run the evaluation first)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    missing = [k for k in ("scheme", "n", *BASE_METRICS) if k not in results]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    block = results.get("items")
    if block:
        items = {i: (g, p) for i, g, p in zip(block["ids"], block["gold"], block["pred"])}
    else:
        items = _items_from_predictions(run_dir, results)
    name = str(results.get("system") or run_dir.resolve().name)
    return RunRecord(run_dir, name, results, items)


def unique_names(runs: list[RunRecord]) -> None:
    """Suffix repeated system names in place: ``a``, ``a (2)``, ``a (3)``."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
        if seen[run.name] > 1:
            run.name = f"{run.name} ({seen[run.name]})"


def _value(run: RunRecord, metric: str) -> float | None:
    v = run.results.get(metric)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def best_run(runs: list[RunRecord], metric: str) -> RunRecord | None:
    """The run with the best finite ``metric`` (lowest for MAE), None when no run has it."""
    scored = [r for r in runs if _value(r, metric) is not None]
    if not scored:
        return None
    sign = -1 if metric in LOWER_IS_BETTER else 1
    return max(scored, key=lambda r: sign * _value(r, metric))


def paired_vs_best(run: RunRecord, best: RunRecord, metric: str, labels: list[int], n_boot: int, seed: int) -> dict | None:
    """Paired bootstrap of ``run - best`` on the ids both scored with the same gold."""
    if run.items is None or best.items is None:
        return None
    common = [i for i in run.items if i in best.items]
    if not common:
        return None
    if any(run.items[i][0] != best.items[i][0] for i in common):
        logger.warning("%s and %s disagree on gold labels; no paired test", run.name, best.name)
        return None
    gold = [run.items[i][0] for i in common]
    return paired_bootstrap(gold, [run.items[i][1] for i in common], [best.items[i][1] for i in common],
                            metric, n_boot=n_boot, seed=seed, labels=labels)


def run_row(run: RunRecord, metrics: list[str], best: RunRecord | None, paired: dict | None) -> dict:
    """The comparison's row for ``run``: its metrics with CIs, ECE, and the paired Δ vs best."""
    res = run.results
    row = {"system": run.name, "run_dir": str(run.dir), "n": res.get("n"),
           "invalid_rate": res.get("invalid_rate"), "best": run is best}
    for m in metrics:
        row[m] = _value(run, m)
        row[f"{m}_ci"] = res.get("ci", {}).get(m)
    if "binary" in res:
        row["binary_f1"] = res["binary"].get("f1")
    if isinstance(res.get("calibration"), dict):
        row["ece"], row["ece_ci"] = res["calibration"].get("ece"), res["calibration"].get("ci", {}).get("ece")
    row.update(delta=None, delta_ci=None, p_value=None, paired_n=None)
    if paired is not None:
        row.update(delta=paired["delta"], delta_ci=list(paired["ci"]), p_value=paired["p_value"],
                   paired_n=paired["n"])
    return row
