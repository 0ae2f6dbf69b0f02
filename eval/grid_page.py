"""The prompt matrix's HTML page: a sortable grid, one row per cell, per-class deltas, flips links.

Plain HTML with a small inline script (click a column head to sort); no external
assets, so the page opens from disk anywhere. It takes ``matrix.json``'s data (a dict),
not the job's types, so eval does not depend on jobs.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from llm_aug.core.files import atomic_write_text
from llm_aug.eval.render import FONT_STACK

_SORT_JS = """
document.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
  const key = r => { const t = r.cells[col].dataset.v ?? r.cells[col].textContent;
                     const x = parseFloat(t); return isNaN(x) ? t : x; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""


def _num(v: float | None, fmt: str = "{:.4f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _td(text: str, value: float | None = None, cls: str = "") -> str:
    attrs = (f' data-v="{value}"' if value is not None else "") + (f' class="{cls}"' if cls else "")
    return f"<td{attrs}>{html.escape(text)}</td>"


def _delta_cls(d: float | None, lower_better: bool = False) -> str:
    if d is None or d == 0:
        return ""
    return "up" if (d > 0) != lower_better else "down"


def _row(i: int, cell: dict[str, Any], metrics: list[str], classes: list[str], page_dir: Path) -> str:
    tds = [_td(str(i), i), _td(cell["label"])]
    tds += [_td(_num(cell["metrics"].get(m)), cell["metrics"].get(m)) for m in metrics]
    vs = cell.get("vs_baseline") or {}
    for m in metrics:
        d = vs.get(m)
        if d is None:
            tds.append(_td("baseline", 0.0))
        else:
            text = f"{d['delta']:+.4f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] p={_num(d.get('p_holm'), '{:.3f}')}"
            tds.append(_td(text, d["delta"], _delta_cls(d["delta"], m == "mae")))
    per_class = cell.get("per_class_f1_delta") or {}
    tds += [_td(_num(per_class.get(c), "{:+.2f}"), per_class.get(c), _delta_cls(per_class.get(c))) for c in classes]
    cost = cell["cost"]
    tds += [_td(str(cost["requests"]), cost["requests"]),
            _td(str(cost["prompt_tokens"] + cost["completion_tokens"]), cost["prompt_tokens"] + cost["completion_tokens"]),
            _td(f"{cost['seconds']:.1f}", cost["seconds"])]
    if cell.get("flips_file"):
        href = os.path.relpath(cell["flips_file"], page_dir)
        tds.append(f'<td data-v="{cell["flips"]}"><a href="{html.escape(href)}">{cell["flips"]} flips</a></td>')
    else:
        tds.append(_td("", -1))
    return "<tr>" + "".join(tds) + "</tr>"


def render_grid(matrix: dict[str, Any], page_dir: Path) -> str:
    """The page's HTML for ``matrix`` (the data of ``matrix.json``)."""
    metrics, cells = matrix["metrics"], matrix["cells"]
    classes = list(cells[0]["per_class_f1"]) if cells else []
    heads = ["#", "cell", *metrics, *(f"Δ {m}" for m in metrics), *(f"ΔF1 {c}" for c in classes),
             "requests", "tokens", "seconds", "flips"]
    gate = matrix.get("gate")
    verdict = ""
    if gate:
        state = "pass" if gate["passed"] else "FAIL: " + ", ".join(gate["worse"])
        verdict = (f"<p class=\"gate\">gate {html.escape(gate['metric'])} (margin {gate['margin']}, "
                   f"one-sided, Holm, alpha {gate['alpha']}): {html.escape(state)}</p>")
    rows = "\n".join(_row(i, c, metrics, classes, page_dir) for i, c in enumerate(cells))
    return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<title>提示词矩阵 prompt matrix</title>
<style>
body {{ font-family: {FONT_STACK}; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }}
td:nth-child(2) {{ text-align: left; }}
th {{ background: #eee; cursor: pointer; }}
.up {{ background: #e3f4e3; }} .down {{ background: #fbe3e3; }}
</style>
</head>
<body>
<h1>提示词矩阵 (prompt matrix)</h1>
<p>基线 baseline: {html.escape(matrix["baseline"])} &nbsp; n = {matrix["n"]}.
Δ = 单元减基线 (cell − baseline), 配对自助法 95% 区间 (paired bootstrap), p 经 Holm 校正.
点击列标题排序 (click a column head to sort).</p>
{verdict}
<table>
<thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in heads)}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>{_SORT_JS}</script>
</body>
</html>
"""


def write_grid(matrix: dict[str, Any], path: str | Path) -> Path:
    """Write the grid page for ``matrix`` to ``path``; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_grid(matrix, path.parent))
    return path
