"""Training rows that copy a held-out (protected) post: exact copies and near-copies.

``llm-aug augment`` always drops exact copies (the same text up to punctuation and
spacing) and reports near-copies (:mod:`llm_aug.augment.nearcopy`), dropping them with
``--drop-near-protected``; ``llm-aug experiment run --eval-split test`` drops both from
every training set before training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llm_aug.augment.nearcopy import NearCopyIndex, NearCopyRules
from llm_aug.data.io import Dataset, Row
from llm_aug.data.stats import overlap_key

EXAMPLES = 5  # near-copies listed in summaries


class Copy(NamedTuple):
    """A training row (by position) that copies protected post ``protected_id``."""

    index: int
    row_id: str
    protected_id: str
    reason: str


@dataclass
class HeldOutCopies:
    """Exact copies and near-copies of protected posts among a training set's rows."""

    exact: list[Copy] = field(default_factory=list)
    near: list[Copy] = field(default_factory=list)

    def summary(self, drop_near: bool) -> dict[str, Any]:
        """Counts for reports and manifests, with the first few near-copies as examples."""
        return {"exact": len(self.exact), "near": len(self.near), "near_dropped": drop_near,
                "dropped": len(self.exact) + (len(self.near) if drop_near else 0),
                "examples": [{"id": c.row_id, "protected": c.protected_id, "reason": c.reason}
                             for c in self.near[:EXAMPLES]]}


def find_copies(rows: Sequence[Row], protected: Sequence[Row], rules: NearCopyRules | None = None,
                n: int = 3) -> HeldOutCopies:
    """Which of ``rows`` are exact copies (first) or near-copies of a ``protected`` post."""
    held = {k: r.id for r in protected if (k := overlap_key(r.text))}
    found = HeldOutCopies()
    rest: list[int] = []
    for i, row in enumerate(rows):
        key = overlap_key(row.text)
        if key in held:
            found.exact.append(Copy(i, row.id, held[key], "same text up to punctuation"))
        else:
            rest.append(i)
    if rest and protected:
        index = NearCopyIndex([r.text for r in protected], [r.id for r in protected], rules, n)
        for i, match in zip(rest, index.check([rows[i].text for i in rest])):
            if match.reason is not None:
                found.near.append(Copy(i, rows[i].id, index.ids[match.index], match.reason))
    return found


def without_copies(data: Dataset, copies: HeldOutCopies, drop_near: bool) -> Dataset:
    """``data`` without its exact copies (and near-copies when ``drop_near``); meta says how many."""
    gone = {c.index for c in copies.exact} | ({c.index for c in copies.near} if drop_near else set())
    rows = [r for i, r in enumerate(data.rows) if i not in gone]
    return Dataset(rows, data.path, data.scheme, {**data.meta, "held_out_copies": copies.summary(drop_near)})


def copy_lines(summary: dict[str, Any]) -> list[str]:
    """One line each for exact copies and near-copies in a :meth:`HeldOutCopies.summary` (none: [])."""
    lines = []
    if summary.get("exact"):
        lines.append(f"dropped {summary['exact']} training post(s) that also appear in the protect files "
                     "(same text up to punctuation; check your split)")
    if summary.get("near"):
        first = summary["examples"][0] if summary.get("examples") else None
        example = f", e.g. {first['id']}: {first['reason']}" if first else ""
        what = ("dropped (--drop-near-protected)" if summary.get("near_dropped")
                else "kept in the corpus; pass --drop-near-protected to drop them")
        lines.append(f"{summary['near']} training post(s) are near-copies of protected posts{example}; {what}")
    return lines
