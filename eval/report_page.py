"""What the comparison pages show: titles (scheme, split, posts), the table cells and notes.

:func:`page_data` is the context ``compare.md.jinja`` renders (``compare.html.jinja``
adds the images, see :mod:`llm_aug.eval.report`). ``split_of`` and ``split_title``
also title ``llm-aug evaluate``'s summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.report_runs import RunRecord
from llm_aug.eval.report_screening import NO_PROBA, screening_data
from llm_aug.eval.results import RELIABILITY_FILE

_SPLIT_NAMES = ("train", "val", "dev", "valid", "validation", "test")


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
