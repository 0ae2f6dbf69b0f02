"""``llm-aug experiment report``: ``report.md`` and one self-contained ``report.html``.

Both come from the same blocks (headings, paragraphs, tables, figures); the HTML embeds
every image as base64 and links nothing outside the page.
"""

from __future__ import annotations

import html as html_lib
import logging
from dataclasses import dataclass
from pathlib import Path

from llm_aug.errors import UserError
from llm_aug.eval.report import REPORT_STYLE, png_uri
from llm_aug.eval.results import CONFUSION_FILE
from llm_aug.experiment import paper
from llm_aug.experiment.collect import PAIRED_METRIC, Collected, collect
from llm_aug.experiment.figures import metric_bars
from llm_aug.experiment.tables import Table, cost_table, gains_table, results_table, status_table, summary_table

log = logging.getLogger(__name__)

TASK_TITLES = {"fine": "Fine-grained risk (11 levels, 0-10)", "binary": "Binary risk (low / high)"}
ASSETS = "report_files"
README_BEGIN = "<!-- experiment-results:begin -->"
README_END = "<!-- experiment-results:end -->"


@dataclass
class Block:
    """One piece of the report: kind is h1-h4, p, table or img."""

    kind: str
    text: str = ""
    table: Table | None = None
    png: bytes | None = None
    md_path: str | None = None  # where the Markdown version finds the image


def _notes(c: Collected) -> list[Block]:
    run = c.run
    split = str(run.get("eval_split", "val")).upper()
    counts = ", ".join(f"{v} {k}" for k, v in run.get("counts", {}).items() if v)
    return [
        Block("p", f"Ours: scored on the {split} split (hyper-parameters chosen on val); "
                   f"95% percentile bootstrap intervals over posts ({run.get('n_boot')} resamples); "
                   "F1, accuracy and within ±1 in %; MAE and QWK as is. "
                   "Several seeds: mean ± std over seeds (paired tests use the first seed)."),
        Block("p", "† " + paper.paper_note()),
        Block("p", "Δ: paired bootstrap of weighted F1 (points) against the reference, the best "
                   "majority/TF-IDF baseline on the original train set by its val selection score, "
                   "over the posts both systems scored (n); p is two-sided."),
        Block("p", f"Run: config {run.get('config')}, data {run.get('data_dir')}, finished "
                   f"{run.get('finished')} ({counts})."),
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


def _task_blocks(task: str, c: Collected, out: Path) -> list[Block]:
    ref = c.reference.get(task)
    blocks = [Block("h2", TASK_TITLES.get(task, task)),
              Block("p", f"Reference baseline: {ref.label if ref else 'none (no majority/TF-IDF run)'}."),
              Block("table", table=results_table(task, c))]
    if c.gains.get(task) or task == "fine":
        blocks += [Block("h3", "Augmentation: each augmented train set vs the original"),
                   Block("table", table=gains_table(task, c))]
    blocks += [Block("h3", "Cost and time (mean per seed)"), Block("table", table=cost_table(task, c)),
               Block("p", "Seconds are wall time on the machine that computed the step (fit includes the "
                          "grid search on val and any new embeddings). LLM tokens, cost and time count live "
                          "calls only: answers from the request cache (last column) are free.")]
    if c.groups.get(task):
        bars = _bars(task, c)
        name = f"{ASSETS}/{task}_{PAIRED_METRIC}.png"
        (out / name).write_bytes(bars)
        blocks += [Block("h3", "Weighted F1 by system"), Block("img", f"{task}: weighted F1", png=bars,
                                                                 md_path=name)]
    blocks.append(Block("h3", "Confusion matrices (first seed)"))
    for g in c.groups.get(task, []):
        png = g.runs[0].dir / CONFUSION_FILE
        if png.is_file():
            blocks.append(Block("img", g.label, png=png.read_bytes(),
                                md_path=str(png.resolve().relative_to(out.resolve()))))
    return blocks


def build_blocks(c: Collected, out: Path) -> list[Block]:
    """The whole report, in order."""
    (out / ASSETS).mkdir(parents=True, exist_ok=True)
    blocks = [Block("h1", f"Experiment report: {c.run.get('name')}"), *_notes(c)]
    for task in c.groups:
        blocks += _task_blocks(task, c, out)
    status = status_table(c)
    if status[1]:
        blocks += [Block("h2", "Steps without results"), Block("table", table=status)]
    return blocks


def _md_table(table: Table) -> list[str]:
    head, rows = table
    esc = [[cell.replace("|", "\\|") for cell in line] for line in [head, *rows]]
    return ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(line) + " |" for line in esc[1:]), ""]


def to_markdown(blocks: list[Block]) -> str:
    """Markdown with images linked by relative path."""
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3", "h4"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table" and b.table:
            lines += _md_table(b.table)
        elif b.kind == "img" and b.md_path:
            lines += [f"![{b.text}]({b.md_path})", ""]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    esc = html_lib.escape
    head, rows = table
    trs = ["<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for line in rows:
        cls = ' class="paper"' if line and "†" in line[0] else ""
        trs.append(f"<tr{cls}>" + "".join(f"<td>{esc(cell)}</td>" for cell in line) + "</tr>")
    return "<table>" + "".join(trs) + "</table>"


def to_html(blocks: list[Block], title: str) -> str:
    """One page; images inline as base64 data URIs."""
    esc = html_lib.escape
    parts = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3", "h4"):
            parts.append(f"<{b.kind}>{esc(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{esc(b.text)}</p>")
        elif b.kind == "table" and b.table:
            parts.append(_html_table(b.table))
        elif b.kind == "img" and b.png:
            parts.append(f'<figure><img alt="{esc(b.text)}" src="{png_uri(b.png)}">'
                         f"<figcaption>{esc(b.text)}</figcaption></figure>")
    style = REPORT_STYLE + "tr.paper{background:#fff6e0;font-style:italic}"
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def summary_blocks(c: Collected) -> list[Block]:
    """The short version for a README: per task, every system on the original set (+ augmentation)."""
    split = str(c.run.get("eval_split", "val")).upper()
    blocks = [Block("p", f"Produced by `llm-aug experiment report` from the run of {Path(str(c.run.get('config'))).name} "
                         f"(finished {c.run.get('finished')}). Ours: {split} split, hyper-parameters chosen on val, "
                         "weighted F1 in % with 95% bootstrap CIs; Δ: paired bootstrap against the best "
                         "majority/TF-IDF baseline. † " + paper.paper_note())]
    for task in c.groups:
        blocks += [Block("h4", TASK_TITLES.get(task, task)), Block("table", table=summary_table(task, c))]
        if c.gains.get(task):
            blocks += [Block("p", "Augmented train sets, each against the same system on the original set:"),
                       Block("table", table=gains_table(task, c))]
    return blocks


def update_readme(path: Path, markdown: str) -> None:
    """Replace the text between the README's result markers with ``markdown``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if README_BEGIN not in text or README_END not in text.split(README_BEGIN, 1)[1]:
        raise UserError(f"{path}: add the lines {README_BEGIN} and {README_END} where the table goes")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    path.write_text(f"{head}{README_BEGIN}\n{markdown.strip()}\n{README_END}{tail}", encoding="utf-8")


def write_report(out: str | Path, readme: str | Path | None = None) -> dict[str, Path]:
    """Write ``OUT/report.md``, ``OUT/report.html`` and ``OUT/summary.md``; return their paths.

    With ``readme``, the summary also replaces the block between its result markers.
    """
    out = Path(out)
    c = collect(out)
    blocks = build_blocks(c, out)
    md, page, summary = out / "report.md", out / "report.html", out / "summary.md"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page.write_text(to_html(blocks, f"llm-aug experiment: {c.run.get('name')}"), encoding="utf-8")
    short = to_markdown(summary_blocks(c))
    summary.write_text(short, encoding="utf-8")
    paths = {"markdown": md, "html": page, "summary": summary}
    if readme is not None:
        update_readme(Path(readme), short)
        paths["readme"] = Path(readme)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
