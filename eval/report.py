"""Compare evaluated runs: a Markdown table and a self-contained HTML page.

Both pages are rendered by :mod:`llm_aug.eval.render` from ``compare.md.jinja`` and
``compare.html.jinja``; this module computes what they show.

Each run directory holds a ``results.json`` written by
:func:`llm_aug.eval.results.write_results`. Per-item gold and predictions come from
its ``items`` block or, failing that, from the run's predictions file when that file
carries a ``gold`` (or ``label``) field per line; they feed a paired bootstrap of
every run against the best one.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError, did_you_mean
from llm_aug.core.files import PREDICTIONS_FILE, atomic_write_binary, atomic_write_text
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.bootstrap import paired_bootstrap
from llm_aug.eval.metrics import LOWER_IS_BETTER, METRICS, ORDINAL_METRICS
from llm_aug.eval.plots import plot_confusion, plot_metric_bars
from llm_aug.eval.predictions import _is_int, read_predictions
from llm_aug.eval.render import render
from llm_aug.eval.report_screening import NO_PROBA, reliability_png, screening_data
from llm_aug.eval.results import CONFUSION_FILE, RELIABILITY_FILE, RESULTS_FILE

logger = logging.getLogger(__name__)

_BASE = ("accuracy", "weighted_f1", "macro_f1")


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
    missing = [k for k in ("scheme", "n", *_BASE) if k not in results]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}")
    block = results.get("items")
    if block:
        items = {i: (g, p) for i, g, p in zip(block["ids"], block["gold"], block["pred"])}
    else:
        items = _items_from_predictions(run_dir, results)
    name = str(results.get("system") or run_dir.resolve().name)
    return RunRecord(run_dir, name, results, items)


def _unique_names(runs: list[RunRecord]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
        if seen[run.name] > 1:
            run.name = f"{run.name} ({seen[run.name]})"


def _value(run: RunRecord, metric: str) -> float | None:
    v = run.results.get(metric)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _best(runs: list[RunRecord], metric: str) -> RunRecord | None:
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


def _row(run: RunRecord, metrics: list[str], best: RunRecord | None, paired: dict | None) -> dict:
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


def _fmt(v: object, ci: object = None, digits: int = 3) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    text = f"{v:.{digits}f}"
    if isinstance(ci, (list, tuple)) and all(isinstance(c, (int, float)) for c in ci):
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def _table(rows: list[dict], metrics: list[str], metric: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by the Markdown and HTML tables."""
    has_bin = any("binary_f1" in r for r in rows)
    has_ece = any("ece" in r for r in rows)
    head = ["System", "n", "invalid", *metrics] + (["binary F1 (high)"] if has_bin else [])
    head += ["ECE [95% CI]"] if has_ece else []
    head += [f"Δ {metric} vs best [CI]", "p"]
    cells = []
    for r in rows:
        line = [r["system"] + (" (best)" if r["best"] else ""), str(r["n"]), _fmt(r["invalid_rate"])]
        line += [_fmt(r[m], r[f"{m}_ci"]) for m in metrics]
        line += [_fmt(r.get("binary_f1"))] if has_bin else []
        line += [(_fmt(r["ece"], r["ece_ci"]) if "ece" in r else NO_PROBA)] if has_ece else []
        if r["best"]:
            line += ["—", "—"]
        elif r["delta"] is None:
            line += ["n/a", "n/a"]
        else:
            partial = f" (on {r['paired_n']} shared ids)" if r["paired_n"] != r["n"] else ""
            line += [_fmt(r["delta"], r["delta_ci"]) + partial, _fmt(r["p_value"])]
        cells.append(line)
    return head, cells


def _notes(first: dict, metric: str) -> str:
    n_boot, alpha = first.get("n_boot"), first.get("alpha", 0.05)
    return (
        f"Intervals: {100 * (1 - alpha):.0f}% percentile bootstrap over items ({n_boot} resamples). "
        f"Δ = system − best on {metric}, over the ids both runs scored (paired bootstrap, "
        "same resamples; for mae, negative is better); p is two-sided. "
        "Invalid (unparseable) predictions count as wrong; MAE and QWK are over valid predictions only."
    )


_SPLIT_NAMES = ("train", "val", "dev", "valid", "validation", "test")


def split_of(results: dict) -> str:
    """The split a results.json was scored on: its ``split`` key, else the gold file's stem
    when that is a split name (``test.tsv`` -> ``test``), else the gold file's name."""
    if results.get("split"):
        return str(results["split"])
    gold = results.get("gold")
    if not gold:
        return "unknown split"
    path = Path(str(gold))
    return path.stem if path.stem.lower() in _SPLIT_NAMES else path.name


def split_title(split: str, n: object) -> str:
    """``TEST split (33 posts)``, or ``gold my.tsv (33 posts)`` when ``split`` is a file name."""
    if split.lower() in _SPLIT_NAMES:
        where = f"{split.upper()} split"
    elif split == "unknown split":
        where = split
    else:
        where = f"gold {split}"
    return f"{where} ({n} posts)"


def _split_and_n(runs: list[RunRecord], split: str | None) -> tuple[str, str]:
    """One split label (runs scored on different gold files are listed) and the post count."""
    found = list(dict.fromkeys(split_of(r.results) for r in runs))
    label = split or (found[0] if len(found) == 1 else " / ".join(found))
    ns = sorted({int(r.results["n"]) for r in runs if isinstance(r.results.get("n"), int)})
    n = "?" if not ns else str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return label, n


def _confusion_vmax(runs: list[RunRecord]) -> int:
    """The largest cell over every run's matrix: one colour scale for the whole page."""
    top = 0
    for run in runs:
        for row in run.results.get("confusion") or []:
            top = max([top, *(int(c) for c in row)])
    return top


def _confusion_png(run: RunRecord, vmax: int | None = None) -> bytes | None:
    """A compact matrix on the shared scale ``vmax``; the run's own confusion.png as fallback."""
    scheme = None
    if run.results.get("confusion"):
        try:
            scheme = load_scheme(run.results["scheme"])
        except UserError:
            scheme = None
    if scheme is None:
        png = run.dir / CONFUSION_FILE
        return png.read_bytes() if png.is_file() else None
    invalid = [c.get("invalid", 0) for c in run.results.get("per_class", {}).values()
               if isinstance(c, dict)] or None
    buf = io.BytesIO()
    plot_confusion(run.results["confusion"], scheme, buf, f"{run.name} (n={run.results.get('n')})",
                   invalid=invalid, vmax=vmax, compact=True)
    return buf.getvalue()


def scheme_title(scheme: str) -> str:
    """The scheme as a title names it (``fine (11 levels)``), or its id when it cannot be loaded."""
    try:
        return load_scheme(scheme).title
    except (UserError, ValueError, OSError):
        return scheme


def page_data(rows: list[dict], runs: list[RunRecord], metrics: list[str], metric: str,
              split: str | None = None, *, banner: str = "",
              links: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """What ``compare.md.jinja`` needs (``compare.html.jinja`` adds ``bars`` and ``confusions``).

    ``split`` names the data the runs were scored on (default: from their results, see
    :func:`split_of`); the title carries it and the number of posts. ``banner`` is a
    warning shown above everything (none when empty); ``links`` are (text, relative href)
    pairs to related pages.
    """
    first = runs[0].results
    split_label, n = _split_and_n(runs, split)
    scheme = str(first["scheme"])
    return {"scheme": scheme, "scheme_title": scheme_title(scheme), "task": first.get("task", "?"),
            "metric": metric, "banner": banner, "links": [{"text": t, "href": h} for t, h in links],
            "split": split_label, "n_posts": n,
            "split_title": split_title(split_label, n),
            "table": _table(rows, metrics, metric), "best": [r["best"] for r in rows],
            "notes": _notes(first, metric), "bars_file": f"{metric}_bars.png",
            "screening": screening_data([(r.name, r.results) for r in runs], RELIABILITY_FILE)}


def _write_pages(out_dir: Path, data: dict[str, Any], rows: list[dict], runs: list[RunRecord],
                 html: bool) -> tuple[str, Path | None]:
    """comparison.md, the bar chart and (with ``html``) comparison.html; the Markdown and the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = render("compare.md.jinja", **data)
    atomic_write_text(out_dir / "comparison.md", markdown)
    metric, bars = data["metric"], out_dir / data["bars_file"]
    plot_metric_bars([r["system"] for r in rows], [r[metric] for r in rows],
                     [r[f"{metric}_ci"] for r in rows], bars, metric, subtitle=data["split_title"])
    reliability = data["screening"]["reliability"]
    if reliability is not None:
        png = reliability_png([(r.name, r.results) for r in runs], f"Reliability, {data['split_title']}")
        atomic_write_binary(out_dir / reliability["file"], lambda fh: fh.write(png))
        reliability["png"] = png
    if not html:
        return markdown, None
    vmax = _confusion_vmax(runs) or None
    confusions = [{"name": run.name, "png": _confusion_png(run, vmax)} for run in runs]
    page = out_dir / "comparison.html"
    atomic_write_text(page, render("compare.html.jinja", **data, bars=bars.read_bytes(),
                                   confusions=confusions))
    return markdown, page


def _check_runs(runs: list[RunRecord], metric: str) -> None:
    schemes = sorted({str(r.results["scheme"]) for r in runs})
    if len(schemes) > 1:
        listing = ", ".join(f"{r.dir}: {r.results['scheme']}" for r in runs)
        raise UserError(f"runs use different label schemes ({listing}); compare runs of one scheme")
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}{did_you_mean(metric, METRICS)}; "
                        f"use one of: {', '.join(METRICS)}")
    if metric in ORDINAL_METRICS and not any(metric in r.results for r in runs):
        raise UserError(f"metric {metric!r} needs an ordinal scheme; {schemes[0]!r} is not")


def compare_runs(
    run_dirs: list[Path],
    out_dir: Path,
    *,
    metric: str = "weighted_f1",
    html: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    split: str | None = None,
    banner: str = "",
    links: Sequence[tuple[str, str]] = (),
) -> dict:
    """Compare evaluated runs on ``metric``; write ``comparison.md`` (and ``comparison.html``).

    ``split`` (e.g. ``"test"``) labels the data the runs were scored on; by default it
    comes from the runs' results (their ``split``, else the gold file's name). ``banner``
    and ``links`` go on both pages (see :func:`page_data`).

    Returns ``{'markdown': str, 'html': Path | None, 'rows': [dict per run], 'title': str,
    'split': str, 'n': str}``.
    """
    if not run_dirs:
        raise UserError("no run directories to compare")
    runs = [load_run(Path(d)) for d in run_dirs]
    _check_runs(runs, metric)
    _unique_names(runs)
    ordinal = any("mae" in r.results for r in runs)
    metrics = list(_BASE) + (list(ORDINAL_METRICS) if ordinal else [])
    labels = runs[0].results.get("labels") or sorted({g for r in runs for g, _ in (r.items or {}).values()})
    best = _best(runs, metric)
    rows = []
    for run in runs:
        paired = None if best is None or run is best else paired_vs_best(run, best, metric, labels, n_boot, seed)
        rows.append(_row(run, metrics, best, paired))
    data = page_data(rows, runs, metrics, metric, split, banner=banner, links=links)
    markdown, html_path = _write_pages(Path(out_dir), data, rows, runs, html)
    logger.info("compared %d runs (%s) into %s", len(runs), data["split_title"], out_dir)
    title = f"{data['scheme_title']}, {data['split_title']}"
    return {"markdown": markdown, "html": html_path, "rows": rows, "title": title,
            "split": data["split"], "n": data["n_posts"]}
