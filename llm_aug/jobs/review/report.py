"""``review-report.md``: the class balance after human review, level by level, told plainly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_COLUMNS = ("original", "generated", "accepted", "relabelled_out", "relabelled_in", "rejected", "undecided",
            "conflict", "final", "target", "shortfall")
_HEAD = ("level", "original", "generated", "kept", "relabelled out", "relabelled in", "rejected", "undecided",
         "conflicts", "final", "target", "short")


def _cell(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _table(per_level: dict[int, dict]) -> list[str]:
    lines = ["| " + " | ".join(_HEAD) + " |", "|" + "---:|" * len(_HEAD)]
    lines += [f"| {lv} | " + " | ".join(_cell(row[c]) for c in _COLUMNS) + " |" for lv, row in per_level.items()]
    total = {c: sum(row[c] or 0 for row in per_level.values()) for c in _COLUMNS}
    if any(row["target"] is None for row in per_level.values()):
        total["target"] = total["shortfall"] = None
    lines.append("| **all** | " + " | ".join(_cell(total[c]) for c in _COLUMNS) + " |")
    return lines


def _status(s: dict[str, Any]) -> list[str]:
    out = []
    if s["undecided"]:
        out.append(f"- **{s['undecided']} synthetic posts were not decided** and are left out of the corpus.")
    if s["conflicts"]:
        out.append(f"- **{s['conflicts']} posts were decided differently by the reviewers** and are left out "
                   "(resolve them, or export one reviewer with `--reviewer`).")
    short = {lv: row["shortfall"] for lv, row in s["per_level"].items() if row["shortfall"]}
    out += [f"- level {lv}: {n} short of its target {s['per_level'][lv]['target']} after review"
            for lv, n in short.items()]
    return out or ["- every synthetic post was decided and every level meets its target."]


def _agreement(pairs: list[dict]) -> list[str]:
    if not pairs:
        return ["No two reviewers decided the same posts (or one reviewer was exported): no agreement to show."]
    lines = []
    for p in pairs:
        a, b = p["reviewers"]
        lines += [f"**{a} / {b}**: {p['n_both']} posts decided by both, {_cell(p['percent'], '.1f')}% agree, "
                  f"Cohen's kappa {_cell(p['kappa'], '.3f')}.", "", "| level | both | agree % | kappa |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {lv} | {c['n']} | {_cell(c['percent'], '.1f')} | {_cell(c['kappa'], '.3f')} |"
                  for lv, c in p["per_level"].items()]
        lines.append("")
    return lines


def review_markdown(run: Path, s: dict[str, Any]) -> str:
    """The report of one export; ``s`` is the manifest's review section."""
    who = f"only {s['reviewer']}'s" if s["reviewer"] else f"those of {', '.join(s['reviewers'])}"
    lines = [f"# Review of {run.name}", "",
             f"{s['generated']} synthetic posts generated; {s['decisions']} decisions logged, {who} used; "
             f"exported {s['time']}.",
             f"Kept {s['kept']} ({s['accepted']} as generated, {s['relabelled']} relabelled), rejected "
             f"{s['rejected']}, undecided {s['undecided']}, conflicts {s['conflicts']}.", "", "## Status", "",
             *_status(s), "", "## Balance per level", "",
             "`final` = original + kept as generated + relabelled in: the posts per level in the rebuilt corpus. "
             "A relabelled post counts at its new level.", "", *_table(s["per_level"]), "",
             "## Reject reasons", ""]
    lines += [f"- {reason}: {n}" for reason, n in s["reject_reasons"].items()] or ["- none rejected"]
    lines += ["", "## Agreement", "", *_agreement(s["agreement"])]
    return "\n".join(lines).rstrip() + "\n"
