"""Gather an experiment's step results into per-system groups, with paired tests.

A group is one system on one train set for one task, over its seeds. Paired tests use
each group's first seed. The reference ("best baseline") is the majority/TF-IDF system
on the original train set with the best *selection* score (val weighted F1, recorded
at training time), so a run scored on test never selects on test.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.eval.report import RunRecord, load_run, paired_vs_best
from llm_aug.eval.results import RESULTS_FILE
from llm_aug.experiment.config import ORIGINAL
from llm_aug.experiment.execute import RESULTS_DIR, RUN_FILE

log = logging.getLogger(__name__)

BASELINE_METHODS = ("majority", "tfidf-lr", "tfidf-svm")
PAIRED_METRIC = "weighted_f1"
TASK_METRICS = {
    "fine": ["weighted_f1", "macro_f1", "accuracy", "mae", "qwk", "within1", "binary_f1"],
    "binary": ["weighted_f1", "macro_f1", "accuracy", "f1_high"],
}


def metric_value(results: dict, name: str) -> float | None:
    """A metric of one results.json; ``binary_f1`` = fine collapsed to high risk, ``f1_high`` = class 1."""
    if name == "binary_f1":
        value = (results.get("binary") or {}).get("f1")
    elif name == "f1_high":
        value = (results.get("per_class") or {}).get("1", {}).get("f1")
    else:
        value = results.get(name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class Group:
    """One system x train set for one task, over seeds."""

    task: str
    system: str
    train_set: str
    label: str
    kind: str
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def method(self) -> str | None:
        return self.runs[0].results.get("method") if self.runs else None

    def values(self, name: str) -> list[float]:
        return [v for r in self.runs if (v := metric_value(r.results, name)) is not None]

    def mean_std(self, name: str) -> tuple[float | None, float | None]:
        vals = self.values(name)
        if not vals:
            return None, None
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)

    def ci(self, name: str) -> list | None:
        """The first seed's bootstrap interval (single-seed groups show it)."""
        return self.runs[0].results.get("ci", {}).get(name) if self.runs else None

    def cv(self) -> dict[str, Any] | None:
        """CV weighted F1 over train+val (computed by the first seed's step), if the run asked for it."""
        for r in self.runs:
            if isinstance(r.results.get("cv"), dict):
                return r.results["cv"]
        return None

    def selection_score(self) -> float | None:
        scores = [r.results.get("selection", {}).get("val_weighted_f1") for r in self.runs]
        scores = [s for s in scores if isinstance(s, (int, float))]
        return statistics.fmean(scores) if scores else None

    def total(self, section: str, key: str) -> float | None:
        """Mean over seeds of ``results[section][key]`` (timing, usage)."""
        vals = [r.results.get(section, {}).get(key) for r in self.runs]
        vals = [v for v in vals if isinstance(v, (int, float))]
        return statistics.fmean(vals) if vals else None


@dataclass
class Collected:
    """Everything the report shows."""

    run: dict[str, Any]
    groups: dict[str, list[Group]]
    reference: dict[str, Group | None]
    paired: dict[tuple[str, str, str], dict | None]
    gains: dict[str, list[tuple[Group, Group, dict | None]]]


def _read_run(out: Path) -> dict[str, Any]:
    path = out / RUN_FILE
    if not path.is_file():
        raise UserError(f"{out}: no {RUN_FILE}; run `llm-aug experiment run CONFIG --out {out}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def _groups(out: Path, run: dict[str, Any]) -> dict[str, list[Group]]:
    by_key: dict[tuple[str, str, str], Group] = {}
    for st in run["steps"]:
        folder = out / RESULTS_DIR / st["id"]
        if st["status"] not in ("computed", "cached") or not (folder / RESULTS_FILE).is_file():
            continue
        key = (st["task"], st["system"], st["train_set"])
        group = by_key.setdefault(key, Group(st["task"], st["system"], st["train_set"], st["label"], st["kind"]))
        group.runs.append(load_run(folder))
    out_groups: dict[str, list[Group]] = {}
    for group in by_key.values():
        out_groups.setdefault(group.task, []).append(group)
    return out_groups


def reference_group(groups: list[Group]) -> Group | None:
    """The best baseline: majority/TF-IDF on the original set, by val selection score."""
    pool = [g for g in groups if g.method in BASELINE_METHODS and g.train_set == ORIGINAL]
    scored = [g for g in pool if g.selection_score() is not None]
    return max(scored, key=lambda g: g.selection_score()) if scored else None


def _pair(a: Group, b: Group, n_boot: int) -> dict | None:
    if n_boot < 1 or not a.runs or not b.runs:
        return None
    labels = a.runs[0].results.get("labels") or sorted({g for g, _ in (a.runs[0].items or {}).values()})
    return paired_vs_best(a.runs[0], b.runs[0], PAIRED_METRIC, labels, n_boot, 0)


def collect(out: str | Path) -> Collected:
    """Read ``OUT/run.json`` and every finished step's results; run the paired tests."""
    out = Path(out)
    run = _read_run(out)
    groups = _groups(out, run)
    n_boot = int(run.get("n_boot") or 0)
    reference, paired, gains = {}, {}, {}
    for task, task_groups in groups.items():
        ref = reference_group(task_groups)
        reference[task] = ref
        for g in task_groups:
            paired[(task, g.system, g.train_set)] = None if ref is None or g is ref else _pair(g, ref, n_boot)
        originals = {g.system: g for g in task_groups if g.train_set == ORIGINAL}
        gains[task] = [(g, originals[g.system], _pair(g, originals[g.system], n_boot))
                       for g in task_groups if g.train_set != ORIGINAL and g.system in originals]
    return Collected(run, groups, reference, paired, gains)
