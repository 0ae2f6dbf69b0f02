"""``llm-aug experiment report``: ``report.md``, one self-contained ``report.html`` and ``summary.md``.

This module computes what the pages show (notes, tables as strings, figures as PNG
bytes); :mod:`llm_aug.eval.render` lays it out with ``experiment.md.jinja``,
``experiment.html.jinja`` and ``experiment_summary.md.jinja``. The HTML embeds every
image as base64 and links nothing outside the page.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_binary, atomic_write_text
from llm_aug.eval.render import render
from llm_aug.eval.report_screening import reliability_png, screening_data
from llm_aug.eval.results import CONFUSION_FILE
from llm_aug.experiment import paper
from llm_aug.experiment.collect import PAIRED_METRIC, Collected, collect
from llm_aug.experiment.figures import metric_bars
from llm_aug.experiment.tables import (
    cost_table,
    filtered_table,
    gains_table,
    results_table,
    status_table,
    summary_table,
)

log = logging.getLogger(__name__)

TASK_TITLES = {"fine": "Fine-grained risk (11 levels, 0-10)", "binary": "Binary risk (low / high)"}
ASSETS = "report_files"
README_BEGIN = "<!-- experiment-results:begin -->"
README_END = "<!-- experiment-results:end -->"
FILTER_NOTE = ("Before training, every training set lost its rows that are the same text as a {split} post up "
               "to punctuation, and its synthetic rows that are near-copies of one (the leakage filter's rules: "
               "half of the {split} post or most of the row reappears, or a verbatim run of 16+ characters; "
               "llm_aug.augment.nearcopy), so no {split} post trains a step or serves as an LLM exemplar. "
               "Real posts of the original training file that are only near a {split} post (a shared stock "
               "phrase) are kept and counted, as llm-aug augment keeps them.")
COST_NOTE = ("Seconds are wall time on the machine that computed the step (fit includes the grid search on "
             "val and any new embeddings). LLM tokens, cost and time count live calls only: answers from the "
             "request cache (last column) are free.")


def _notes(c: Collected) -> list[str]:
    """The paragraphs under the report's title: scope, the paper's rows, Δ, the run."""
    run = c.run
    split = str(run.get("eval_split", "val")).upper()
    counts = ", ".join(f"{v} {k}" for k, v in run.get("counts", {}).items() if v)
    return [
        f"Ours: scored on the {split} split (hyper-parameters chosen on val); "
        f"95% percentile bootstrap intervals over posts ({run.get('n_boot')} resamples); "
        "F1, accuracy and within ±1 in %; MAE and QWK as is. "
        "Several seeds: mean ± std over seeds (paired tests use the first seed).",
        "† " + paper.paper_note(),
        "Δ: paired bootstrap of weighted F1 (points) against the reference, the best "
        "majority/TF-IDF baseline on the original train set by its val selection score, "
        "over the posts both systems scored (n); p is two-sided.",
        f"Run: config {run.get('config')}, data {run.get('data_dir')}, finished "
        f"{run.get('finished')} ({counts}).",
    ]


def _bars(task: str, c: Collected) -> bytes:
    """Weighted F1 (%) per group with its CI (single seed) and the paper's best as a line."""
    groups = c.groups.get(task, [])
    values = [None if (m := g.mean_std(PAIRED_METRIC)[0]) is None else 100 * m for g in groups]
    cis = [[100 * x for x in ci] if len(g.runs) == 1 and (ci := g.ci(PAIRED_METRIC)) else None for g in groups]
    best = paper.BEST.get(task)
    ref = (f"paper, TEST, reported ({best['label']} {best['value']})", best["value"]) if best else None
    split = str(c.run.get("eval_split", "val")).upper()
    return metric_bars([g.label for g in groups], values, cis, f"{task}: weighted F1 (%) on {split}, 95% CI", ref)


def _figures(task: str, c: Collected, out: Path) -> dict[str, Any]:
    """The bar chart (written to ``OUT/report_files``) and each group's confusion matrix."""
    bars = None
    if c.groups.get(task):
        png = _bars(task, c)
        name = f"{ASSETS}/{task}_{PAIRED_METRIC}.png"
        atomic_write_binary(out / name, lambda fh: fh.write(png))
        bars = {"caption": f"{task}: weighted F1", "png": png, "path": name}
    confusions = []
    for g in c.groups.get(task, []):
        png_path = g.runs[0].dir / CONFUSION_FILE
        if png_path.is_file():
            confusions.append({"caption": g.label, "png": png_path.read_bytes(),
                               "path": str(png_path.resolve().relative_to(out.resolve()))})
    return {"bars": bars, "confusions": confusions}


def _screening(task: str, c: Collected, out: Path) -> dict[str, Any]:
    """The task's risk-screening tables (first seed of each group) and its reliability diagram."""
    entries = [(g.label, g.runs[0].results) for g in c.groups.get(task, []) if g.runs]
    name = f"{ASSETS}/{task}_reliability.png"
    data = screening_data(entries, name)
    if data["reliability"] is not None:
        split = str(c.run.get("eval_split", "val")).upper()
        png = reliability_png(entries, f"{task}: reliability on {split} (first seed; + method: after calibration)")
        atomic_write_binary(out / name, lambda fh: fh.write(png))
        data["reliability"].update(png=png, path=name)
    return data


def _task_data(task: str, c: Collected, out: Path) -> dict[str, Any]:
    """One task's section: title, reference, results / gains / cost / screening tables, figures."""
    ref = c.reference.get(task)
    show_gains = bool(c.gains.get(task)) or task == "fine"
    return {"title": TASK_TITLES.get(task, task),
            "reference": ref.label if ref else "none (no majority/TF-IDF run)",
            "results": results_table(task, c), "gains": gains_table(task, c) if show_gains else None,
            "filtered": filtered_table(task, c), "cost": cost_table(task, c),
            "screening": _screening(task, c, out), **_figures(task, c, out)}


def report_data(c: Collected, out: Path) -> dict[str, Any]:
    """What ``experiment.md.jinja`` and ``experiment.html.jinja`` show; writes the figures' PNGs."""
    (out / ASSETS).mkdir(parents=True, exist_ok=True)
    status = status_table(c)
    split = str(c.run.get("eval_split", "val")).upper()
    return {"name": c.run.get("name"), "notes": _notes(c), "cost_note": COST_NOTE,
            "filter_note": FILTER_NOTE.format(split=split), "split": split,
            "tasks": [_task_data(task, c, out) for task in c.groups], "status": status if status[1] else None}


def summary_data(c: Collected) -> dict[str, Any]:
    """What ``experiment_summary.md.jinja`` shows: per task, every system on the original set
    (+ augmentation); the short version for a README."""
    split = str(c.run.get("eval_split", "val")).upper()
    intro = (f"Produced by `llm-aug experiment report` from the run of {Path(str(c.run.get('config'))).name} "
             f"(finished {c.run.get('finished')}). Ours: {split} split, hyper-parameters chosen on val, "
             "weighted F1 in % with 95% bootstrap CIs; Δ: paired bootstrap against the best "
             "majority/TF-IDF baseline. † " + paper.paper_note())
    if any(filtered_table(task, c) for task in c.groups):
        intro += (f" Every training set was filtered against the {split} split before training "
                  "(report.md lists the rows removed).")
    tasks = [{"title": TASK_TITLES.get(task, task), "table": summary_table(task, c),
              "gains": gains_table(task, c) if c.gains.get(task) else None} for task in c.groups]
    return {"intro": intro, "tasks": tasks}


def update_readme(path: Path, markdown: str) -> None:
    """Replace the text between the README's result markers with ``markdown``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if README_BEGIN not in text or README_END not in text.split(README_BEGIN, 1)[1]:
        raise UserError(f"{path}: add the lines {README_BEGIN} and {README_END} where the table goes")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    atomic_write_text(path, f"{head}{README_BEGIN}\n{markdown.strip()}\n{README_END}{tail}")


def write_report(out: str | Path, readme: str | Path | None = None) -> dict[str, Path]:
    """Write ``OUT/report.md``, ``OUT/report.html`` and ``OUT/summary.md``; return their paths.

    With ``readme``, the summary also replaces the block between its result markers.
    """
    out = Path(out)
    c = collect(out)
    data = report_data(c, out)
    md, page, summary = out / "report.md", out / "report.html", out / "summary.md"
    atomic_write_text(md, render("experiment.md.jinja", **data))
    atomic_write_text(page, render("experiment.html.jinja", **data))
    short = render("experiment_summary.md.jinja", **summary_data(c))
    atomic_write_text(summary, short)
    paths = {"markdown": md, "html": page, "summary": summary}
    if readme is not None:
        update_readme(Path(readme), short)
        paths["readme"] = Path(readme)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
