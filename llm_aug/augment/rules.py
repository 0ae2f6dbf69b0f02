"""Rule-based rewriting (Cilin synonyms, EDA) of a level's real posts as a candidate source.

Per level the stream is: variant 0 of every source post (in a seeded order) and every
op, then variant 1 of each, ...; each round takes the next ``n`` of it. The stream is
computed only as far as rounds read it: rewriting segments each post with jieba (a few
ms a post), so rewriting all 25,000 posts of a level of a 100,000-row training file when
the plan needs 2,500 rewrites would cost minutes for nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math

from llm_aug.augment.rows import SynthRow
from llm_aug.augment.traditional import Augmenter
from llm_aug.data.io import Dataset, Row
from llm_aug.llm.types import RunSummary

log = logging.getLogger(__name__)

RULE_OPS = {"synonym": ("synonym",), "eda": Augmenter.OPS}
_CHUNK = 64  # source posts rewritten at a time


def by_level(train: Dataset) -> dict[int, list[Row]]:
    """Training rows grouped by label, in file order."""
    groups: dict[int, list[Row]] = {}
    for row in train.rows:
        if row.label is not None:
            groups.setdefault(row.label, []).append(row)
    return groups


def rotation(rows: list[Row], seed: int, level: int) -> list[Row]:
    """A seeded order of a level's source rows (stable under reruns)."""
    return sorted(rows, key=lambda r: hashlib.sha1(f"{seed}:{level}:{r.id}".encode()).hexdigest())


class _Stream:
    """One level's rewrite stream, rewritten chunk by chunk as it is read.

    A post's variants depend only on (seed, post, op, k) (:meth:`Augmenter.augment`), so
    rewriting in chunks gives the same stream as rewriting every post at once.
    """

    def __init__(self, rows: list[Row], ops: tuple[str, ...], variants: int, augmenter: Augmenter,
                 seed: int) -> None:
        self.rows, self.ops, self.variants, self.augmenter, self.seed = rows, ops, variants, augmenter, seed
        self.done = 0  # source posts rewritten
        self.groups: list[list[SynthRow]] = []  # per (post, op): its variants in k order
        self.items: list[SynthRow] = []  # the stream as far as it is known
        self.complete = False

    def _advance(self) -> bool:
        """Rewrite the next chunk (variant 0 joins the stream), or add the later variants; False at the end."""
        if self.done < len(self.rows):
            chunk = self.rows[self.done:self.done + _CHUNK]
            self.done += len(chunk)
            groups: dict[tuple[str, str], list[SynthRow]] = {(r.id, op): [] for r in chunk for op in self.ops}
            for synth in self.augmenter.augment(chunk, ops=self.ops, n_per_row=self.variants, seed=self.seed):
                groups[(synth.source_ids[0], synth.method)].append(synth)
            self.groups += groups.values()
            self.items += [g[0] for g in groups.values() if g]
            return True
        if not self.complete:
            self.complete = True
            for j in range(1, self.variants):
                self.items += [g[j] for g in self.groups if j < len(g)]
            return True
        return False

    def take(self, start: int, n: int) -> list[SynthRow]:
        while len(self.items) < start + n and self._advance():
            pass
        return self.items[start:start + n]

    def bound(self) -> int:
        """The stream's length once complete; until then an upper bound."""
        if self.complete:
            return len(self.items)
        pending = (len(self.rows) - self.done) * len(self.ops) * self.variants
        return len(self.items) + sum(len(g) - 1 for g in self.groups if g) + pending


class RuleRewriter:
    """Synonym replacement or EDA on a level's real posts, round-robin over the posts (module docstring)."""

    unit = 1

    def __init__(self, method: str, train: Dataset, *, seed: int, max_units: dict[int, int],
                 augmenter: Augmenter | None = None) -> None:
        self.ops, self.seed, self.max_units = RULE_OPS[method], seed, max_units
        self.pools = {lv: rotation(rows, seed, lv) for lv, rows in by_level(train).items()}
        self.augmenter = augmenter
        self.summaries: list[RunSummary] = []
        self._streams: dict[int, _Stream] = {}
        self._cursor: dict[int, int] = {}

    def _stream(self, level: int) -> _Stream:
        if level not in self._streams:
            rows = self.pools.get(level, [])
            self.augmenter = self.augmenter or Augmenter()
            variants = math.ceil(self.max_units.get(level, 0) / max(1, len(rows) * len(self.ops)))
            self._streams[level] = _Stream(rows, self.ops, variants, self.augmenter, self.seed)
        return self._streams[level]

    def capacity(self, level: int) -> int | None:
        """Rewrites left for ``level`` (an upper bound until its stream is exhausted)."""
        return max(0, self._stream(level).bound() - self._cursor.get(level, 0))

    def generate(self, round_no: int, counts: dict[int, int]) -> list[SynthRow]:
        out: list[SynthRow] = []
        for lv, n in sorted(counts.items()):
            start = self._cursor.get(lv, 0)
            out += self._stream(lv).take(start, n)
            self._cursor[lv] = start + n
        return out
