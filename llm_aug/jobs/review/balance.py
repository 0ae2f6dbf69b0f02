"""What the review decided per synthetic row, and the class balance that leaves.

A row's verdict comes from each reviewer's latest decision on it (skips are no decision):
no decision is ``undecided``; reviewers giving different outcomes (levels, or reject) is
a ``conflict``; otherwise the shared outcome: ``accept`` (the level it was made for),
``relabel`` (another level) or ``reject``. Undecided and conflicting rows leave the
corpus like rejected ones, but are counted apart so the report says what was not reviewed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from llm_aug.core.errors import UserError
from llm_aug.jobs.review.store import Decision, latest

KINDS = ("accept", "relabel", "reject", "undecided", "conflict")


class Verdict(NamedTuple):
    """The review's outcome for one row: ``kind`` (one of :data:`KINDS`), the level it
    ends at (accept, relabel), the reject reasons, and who decided."""

    kind: str
    level: int | None
    reasons: tuple[str, ...]
    reviewers: tuple[str, ...]


def _by_row(decisions: Iterable[Decision], reviewer: str | None) -> dict[str, dict[str, Decision]]:
    out: dict[str, dict[str, Decision]] = defaultdict(dict)
    for (row_id, who), d in latest(decisions).items():
        if d.decision != "skip" and (reviewer is None or who == reviewer):
            out[row_id][who] = d
    return out


def _verdict(row: Mapping, ds: dict[str, Decision], labels: list[int]) -> Verdict:
    if not ds:
        return Verdict("undecided", None, (), ())
    who = tuple(sorted(ds))
    outcomes = set()
    for name, d in ds.items():
        if d.decision == "relabel" and d.level not in labels:
            raise UserError(f"review.jsonl: {name} relabelled row {row['id']!r} to {d.level}, "
                            f"not a level of the scheme ({', '.join(map(str, labels))})")
        outcomes.add("reject" if d.decision == "reject" else row["label"] if d.decision == "accept" else d.level)
    if len(outcomes) > 1:
        return Verdict("conflict", None, (), who)
    (only,) = outcomes
    if only == "reject":
        return Verdict("reject", None, tuple(sorted({str(d.reason) for d in ds.values()})), who)
    return Verdict("accept" if only == row["label"] else "relabel", int(only), (), who)


def verdicts(rows: list[dict], decisions: list[Decision], labels: list[int],
             reviewer: str | None = None) -> dict[str, Verdict]:
    """row id -> :class:`Verdict` for every synthetic row (``reviewer``: that reviewer's decisions only)."""
    by_row = _by_row(decisions, reviewer)
    return {str(r["id"]): _verdict(r, by_row.get(str(r["id"]), {}), labels) for r in rows}


def balance(originals: list[dict], rows: list[dict], found: Mapping[str, Verdict],
            targets: Mapping[int, int], labels: list[int]) -> dict[int, dict[str, int | None]]:
    """Per level: original posts, generated, and what review did with them; ``final`` = original +
    accepted + relabelled in; ``shortfall`` against the run's target (None without one)."""
    table = {lv: Counter() for lv in labels}
    for r in originals:
        table.setdefault(int(r["label"]), Counter())["original"] += 1
    for r in rows:
        v, lv = found[str(r["id"])], int(r["label"])
        table.setdefault(lv, Counter())["generated"] += 1
        if v.kind == "relabel":
            table[lv]["relabelled_out"] += 1
            table.setdefault(int(v.level), Counter())["relabelled_in"] += 1  # type: ignore[arg-type]
        else:
            table[lv]["accepted" if v.kind == "accept" else
                      "rejected" if v.kind == "reject" else v.kind] += 1
    out: dict[int, dict[str, int | None]] = {}
    for lv, c in sorted(table.items()):
        final = c["original"] + c["accepted"] + c["relabelled_in"]
        target = targets.get(lv)
        out[lv] = {k: c[k] for k in ("original", "generated", "accepted", "relabelled_out", "relabelled_in",
                                     "rejected", "undecided", "conflict")}
        out[lv] |= {"final": final, "target": target, "shortfall": None if target is None else max(0, target - final)}
    return out


def reject_reasons(found: Mapping[str, Verdict]) -> dict[str, int]:
    """How often each reason was given for the rows review rejected."""
    return dict(Counter(reason for v in found.values() if v.kind == "reject" for reason in v.reasons).most_common())
