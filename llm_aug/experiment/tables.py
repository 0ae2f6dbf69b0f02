"""The report's tables as plain header + cell lists (rendered to Markdown and HTML elsewhere)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from llm_aug.classifiers.registry import DEFAULT_METHOD
from llm_aug.eval.report_screening import NO_PROBA
from llm_aug.experiment import paper
from llm_aug.experiment.collect import TASK_METRICS, Collected, Group
from llm_aug.experiment.config import ORIGINAL

Table = tuple[list[str], list[list[str]]]

NAMES = {"weighted_f1": "weighted F1", "macro_f1": "macro F1", "accuracy": "accuracy", "mae": "MAE",
         "qwk": "QWK", "within1": "within ±1", "binary_f1": "high-risk F1 (collapsed)",
         "f1_high": "F1 (high risk)"}
_RAW = {"mae", "qwk"}  # shown as is; the others in percent like the paper


def num(value: Any, digits: int = 1) -> str:
    """A finite number, or an em dash."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def _scale(metric: str) -> tuple[float, int]:
    return (1.0, 3) if metric in _RAW else (100.0, 1)


def metric_cell(group: Group, metric: str) -> str:
    """``mean ± std`` over seeds, or the value with its 95% CI for a single seed."""
    mean, std = group.mean_std(metric)
    if mean is None:
        return "—"
    k, d = _scale(metric)
    if len(group.runs) > 1:
        return f"{num(mean * k, d)} ± {num((std or 0.0) * k, d)}"
    ci = group.ci(metric)
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
        return f"{num(mean * k, d)} [{num(ci[0] * k, d)}, {num(ci[1] * k, d)}]"
    return num(mean * k, d)


def ece_cell(group: Group) -> str:
    """ECE of the probabilities on the eval split: with its 95% CI (one seed) or mean ± std over seeds."""
    blocks = [r.results["calibration"] for r in group.runs if isinstance(r.results.get("calibration"), dict)]
    if not blocks:
        return NO_PROBA
    if len(blocks) > 1:
        values = [b["ece"] for b in blocks]
        return f"{num(statistics.fmean(values), 3)} ± {num(statistics.stdev(values), 3)}"
    ci = (blocks[0].get("ci") or {}).get("ece")
    text = num(blocks[0]["ece"], 3)
    return text + (f" [{num(ci[0], 3)}, {num(ci[1], 3)}]" if isinstance(ci, list) and len(ci) == 2 else "")


def cv_cell(group: Group) -> str:
    """CV weighted F1 (%) over train+val: mean ± std over folds."""
    cv = group.cv()
    if not cv:
        return "—"
    return f"{num(cv['mean'] * 100)} ± {num(cv['std'] * 100)}"


def cv_head(c: Collected, task: str) -> str | None:
    """The CV column's header, or None when no group of ``task`` has CV results."""
    cv = next((g.cv() for g in c.groups.get(task, []) if g.cv()), None)
    return None if cv is None else f"CV weighted F1 (train+val, {cv['folds']}-fold x{cv['repeats']})"


def delta_cells(pair: dict | None, is_ref: bool) -> list[str]:
    """Δ weighted F1 (points) with its CI, and p, from a paired bootstrap."""
    if is_ref:
        return ["reference", "—"]
    if pair is None:
        return ["n/a", "n/a"]
    lo, hi = pair["ci"]
    shared = f" (n={pair['n']})"
    return [f"{pair['delta'] * 100:+.1f} [{num(lo * 100)}, {num(hi * 100)}]{shared}", num(pair["p_value"], 3)]


def _paper_row(task: str, metrics: list[str], width: int) -> list[str] | None:
    best = paper.BEST.get(task)
    if best is None:
        return None
    column = best["metric"] if best["metric"] in metrics else "weighted_f1"
    cells = ["—"] * width
    cells[0], cells[1], cells[2], cells[3] = best["system"] + " †", "paper's", "TEST (reported)", "—"
    cells[4 + metrics.index(column)] = f"{best['value']:.2f} ({best['label']})"
    return cells


def results_table(task: str, c: Collected) -> Table:
    """Paper row first (clearly marked), then ours: metrics with CIs and Δ vs the best baseline."""
    groups = c.groups.get(task, [])
    # Optional columns (e.g. the collapsed binary F1, which needs binary gold for the same posts).
    metrics = [m for m in TASK_METRICS[task] if m == "weighted_f1" or any(g.values(m) for g in groups)]
    cv = cv_head(c, task)
    ece = any(isinstance(r.results.get("calibration"), dict) for g in groups for r in g.runs)
    head = ["System", "Train set", "Split", "n / seeds", *(NAMES[m] for m in metrics),
            *(["ECE [95% CI]"] if ece else []), *([cv] if cv else []), "Δ weighted F1 vs ref [95% CI]", "p"]
    rows = []
    paper_row = _paper_row(task, metrics, len(head))
    if paper_row:
        rows.append(paper_row)
    split = str(c.run.get("eval_split", "val")).upper()
    ref = c.reference.get(task)
    for g in groups:
        n = g.runs[0].results.get("n")
        cells = [g.system, g.train_set, split, f"{n} / {len(g.runs)}"]
        cells += [metric_cell(g, m) for m in metrics]
        cells += [ece_cell(g)] if ece else []
        cells += [cv_cell(g)] if cv else []
        cells += delta_cells(c.paired.get((task, g.system, g.train_set)), g is ref)
        rows.append(cells)
    return head, rows


def summary_table(task: str, c: Collected) -> Table:
    """The README's table: the paper's best, then every system on the original train set."""
    split = str(c.run.get("eval_split", "val")).upper()
    cv = cv_head(c, task)
    head = ["System", f"{split} weighted F1 [95% CI]", *([cv] if cv else []), "Δ vs best baseline [95% CI]", "p"]
    rows = []
    best = paper.BEST.get(task)
    if best:
        rows.append([f"{best['system']} †", f"{best['value']:.2f} {best['label']} (TEST, reported)",
                     *(["—"] if cv else []), "—", "—"])
    ref = c.reference.get(task)
    for g in c.groups.get(task, []):
        if g.train_set != ORIGINAL and g.kind != "llm":
            continue
        label = g.label + (f" (n={g.runs[0].results.get('n')})" if g.kind == "llm" else "")
        if g.method == DEFAULT_METHOD.get(task) and g.system == g.method:
            label += " (default of `llm-aug train`)"
        rows.append([label, metric_cell(g, "weighted_f1"), *([cv_cell(g)] if cv else []),
                     *delta_cells(c.paired.get((task, g.system, g.train_set)), g is ref)])
    return head, rows


def gains_table(task: str, c: Collected) -> Table:
    """Each augmented train set against the same system on the original set (paired)."""
    head = ["System", "Train set", "train rows", "weighted F1", "on original", "Δ [95% CI]", "p"]
    rows = [["paper (TEST, reported) †", "best augmented set", "—", "—", "—",
             f"up to +{paper.AUGMENTATION_GAIN_MAX:.2f}", "—"]] if task == "fine" else []
    for g, orig, pair in c.gains.get(task, []):
        n_train = g.runs[0].results.get("n_train")
        rows.append([g.system, g.train_set, num(n_train, 0), metric_cell(g, "weighted_f1"),
                     metric_cell(orig, "weighted_f1"), *delta_cells(pair, False)])
    return head, rows


def filtered_table(task: str, c: Collected) -> Table | None:
    """Per training set: rows removed before training as copies of eval posts (None: no set was filtered)."""
    head = ["Train set", "rows", "removed", "exact copies", "near-copies", "real posts near a post, kept",
            "trained on"]
    rows, seen = [], set()
    for g in c.groups.get(task, []):
        info = next((r.results["train_filter"] for r in g.runs if isinstance(r.results.get("train_filter"), dict)),
                    None)
        if info is None or g.train_set in seen:
            continue
        seen.add(g.train_set)
        rows.append([g.train_set, num(info.get("rows"), 0), num(info.get("removed"), 0), num(info.get("exact"), 0),
                     num(info.get("near"), 0), num(info.get("near_kept"), 0),
                     num((info.get("rows") or 0) - (info.get("removed") or 0), 0)])
    return (head, rows) if rows else None


def cost_table(task: str, c: Collected) -> Table:
    """Mean seconds per seed and LLM token usage/cost (answers from the request cache cost nothing)."""
    head = ["System", "Train set", "kind", "fit s", "predict s", "predict ms/post",
            "prompt tokens", "completion tokens", "cost USD", "LLM answers from cache"]
    rows = []
    for g in c.groups.get(task, []):
        predict = g.total("timing", "predict_seconds")
        n = g.runs[0].results.get("n") or 0
        per_post = predict * 1000 / n if predict is not None and n else None
        rows.append([g.system, g.train_set, g.kind, num(g.total("timing", "fit_seconds")), num(predict, 2),
                     num(per_post), num(g.total("usage", "prompt_tokens"), 0),
                     num(g.total("usage", "completion_tokens"), 0), num(g.total("usage", "cost_usd"), 4),
                     num(g.total("usage", "n_cached"), 0)])
    return head, rows


def status_table(c: Collected) -> Table:
    """Steps that produced no results in this run, with the reason."""
    head = ["Step", "Status", "Reason"]
    rows = [[s["id"], s["status"], s.get("reason") or ""] for s in c.run.get("steps", [])
            if s["status"] not in ("computed", "cached")]
    return head, rows
