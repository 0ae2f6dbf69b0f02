"""The augment job's round loop: ask a source for candidates, filter each round's once, stream.

Each round asks :mod:`~llm_aug.augment.generate`'s source for the units every short level
still needs (within its cap and the source's capacity), filters the round's candidates in
batches of :data:`FILTER_BATCH` against everything before them (:class:`Filters` keeps
the duplicate indexes), and streams every decided row to the :class:`CorpusWriter`. A
round's cost therefore depends on its own candidates, not on how many came before.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from llm_aug.augment import generate as G
from llm_aug.augment.corpus import CorpusWriter
from llm_aug.augment.filters import Filters
from llm_aug.augment.rows import SynthRow
from llm_aug.core.progress import progress_bar

log = logging.getLogger(__name__)

FILTER_BATCH = 5000  # candidates filtered (and written) at a time: bounds memory, paces the ETA
TAIL = 0.25  # a level's last requests under its cap join the round before when they are this few


class RoundStats(BaseModel):
    """One round's figures (manifest ``result.round_stats``, report, ``bench/scale_augment.py``)."""

    model_config = ConfigDict(extra="forbid")
    round: int
    units: int = Field(description="requests (llm) or source posts asked for")
    candidates: int
    accepted: int = Field(description="kept and within the target")
    seconds: float
    candidates_per_s: float


class RoundLoop:
    """The round loop: ask for candidates, filter each round's once, stream the decided rows.

    Kept rows are accepted in request order until their level reaches its target; later
    kept rows of a full level are surplus. Nothing decided is held in memory: rows go to
    the :class:`CorpusWriter`, only counts and the accepted (text, method, source id) stay.
    """

    def __init__(self, source: G.Source, targets: dict[int, int], caps: dict[int, int],
                 overgenerate: float, filters: Filters | None, writer: CorpusWriter) -> None:
        self.source, self.need, self.caps, self.overgenerate = source, targets, caps, overgenerate
        self.filters, self.writer = filters, writer
        # Per level: (text, method, source id) of each accepted row; the source id is a
        # rewrite's source post or an LLM post's first exemplar ("" when none), for the report.
        self.accepted: dict[int, list[tuple[str, str, str]]] = {}
        self.made: Counter[int] = Counter()
        self.rejections: Counter[str] = Counter()
        self.spent: Counter[int] = Counter()
        self.stats: list[RoundStats] = []

    @property
    def rounds(self) -> int:
        return len(self.stats)

    @property
    def n_candidates(self) -> int:
        return sum(self.made.values())

    def short(self) -> dict[int, int]:
        return {lv: n - len(self.accepted.get(lv, ())) for lv, n in self.need.items()
                if n > len(self.accepted.get(lv, ()))}

    def counts(self) -> dict[int, int]:
        """Units to ask for per short level this round (within cap and capacity)."""
        out = {}
        for lv, missing in self.short().items():
            left = self.caps[lv] - self.spent[lv]
            n = min(math.ceil(missing * self.overgenerate / self.source.unit), left)
            if left - n < n * TAIL:  # the cap would leave a sliver: ask for it now, not in a round of its own
                n = left
            capacity = self.source.capacity(lv)
            n = n if capacity is None else min(n, capacity)
            if n > 0:
                out[lv] = n
        return out

    def run(self) -> None:
        while counts := self.counts():
            log.info("round %d: %s", self.rounds, ", ".join(f"L{lv}: {n}" for lv, n in counts.items()))
            started = time.perf_counter()
            candidates = self.source.generate(self.rounds, counts)
            self.spent.update(counts)
            before = sum(map(len, self.accepted.values()))
            with progress_bar(len(candidates), f"filter round {self.rounds}", unit="post") as bar:
                for start in range(0, len(candidates), FILTER_BATCH):
                    self._decide(candidates[start:start + FILTER_BATCH])
                    bar.update(min(FILTER_BATCH, len(candidates) - start))
            self.writer.flush()
            seconds = max(round(time.perf_counter() - started, 3), 0.001)
            stats = RoundStats(round=self.rounds, units=sum(counts.values()), candidates=len(candidates),
                               accepted=sum(map(len, self.accepted.values())) - before, seconds=seconds,
                               candidates_per_s=round(len(candidates) / seconds, 1))
            self.stats.append(stats)
            log.info("round %d: %d candidates, %d accepted in %.1f s (%.0f candidates/s)", stats.round,
                     stats.candidates, stats.accepted, stats.seconds, stats.candidates_per_s)

    def _decide(self, batch: list[SynthRow]) -> None:
        """Filter one batch against everything before it; accept, count surplus, stream out."""
        self.made.update(r.label for r in batch)
        assert self.filters is not None
        kept, rejected = self.filters.run(batch)
        accepted = []
        for r in kept:
            have = self.accepted.setdefault(r.label, [])
            if len(have) < self.need.get(r.label, 0):
                have.append((r.text, r.method, (r.source_ids or r.exemplar_ids or ("",))[0]))
                accepted.append(r)
            else:
                rejected.append(r.model_copy(update={
                    "rejected_by": "surplus", "reject_reason": f"surplus: level {r.label} already at target"}))
        self.rejections.update(r.rejected_by for r in rejected)
        self.writer.accept(accepted)
        self.writer.reject(rejected)
