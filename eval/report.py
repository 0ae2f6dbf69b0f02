"""Compare evaluated runs: a Markdown table and a self-contained HTML page.

Both pages are rendered by :mod:`llm_aug.eval.render` from ``compare.md.jinja`` and
``compare.html.jinja``; this module checks the runs, writes the pages and their images.
The runs are read by :mod:`llm_aug.eval.report_runs` (results.json, per-item data for a
paired bootstrap of every run against the best one); what the pages show is computed by
:mod:`llm_aug.eval.report_page`. Their public names are importable from here too.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError, did_you_mean
from llm_aug.core.files import atomic_write_binary, atomic_write_text
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.metrics import METRICS, ORDINAL_METRICS
from llm_aug.eval.plots import plot_confusion, plot_metric_bars
from llm_aug.eval.render import render
from llm_aug.eval.report_page import page_data, scheme_title, split_of, split_title
from llm_aug.eval.report_runs import (
    BASE_METRICS,
    RunRecord,
    best_run,
    load_run,
    paired_vs_best,
    run_row,
    unique_names,
)
from llm_aug.eval.report_screening import reliability_png
from llm_aug.eval.results import CONFUSION_FILE

__all__ = ["RunRecord", "compare_runs", "load_run", "page_data", "paired_vs_best", "scheme_title",
           "split_of", "split_title"]

logger = logging.getLogger(__name__)


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
    unique_names(runs)
    ordinal = any("mae" in r.results for r in runs)
    metrics = list(BASE_METRICS) + (list(ORDINAL_METRICS) if ordinal else [])
    labels = runs[0].results.get("labels") or sorted({g for r in runs for g, _ in (r.items or {}).values()})
    best = best_run(runs, metric)
    rows = []
    for run in runs:
        paired = None if best is None or run is best else paired_vs_best(run, best, metric, labels, n_boot, seed)
        rows.append(run_row(run, metrics, best, paired))
    data = page_data(rows, runs, metrics, metric, split, banner=banner, links=links)
    markdown, html_path = _write_pages(Path(out_dir), data, rows, runs, html)
    logger.info("compared %d runs (%s) into %s", len(runs), data["split_title"], out_dir)
    title = f"{data['scheme_title']}, {data['split_title']}"
    return {"markdown": markdown, "html": html_path, "rows": rows, "title": title,
            "split": data["split"], "n": data["n_posts"]}
