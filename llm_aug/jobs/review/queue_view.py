"""The review app's queue: which posts a filter (level, method, score, disagreement, status) selects."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from llm_aug.jobs.review.items import ReviewItem
from llm_aug.jobs.review.store import Decision

STATUSES = ("all", "open", "decided", "skipped")


@dataclass(frozen=True)
class QueueFilter:
    """A queue filter; None (or "all") means no condition."""

    level: int | None = None
    method: str | None = None
    score: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    disagreement: bool = False
    status: str = "all"

    @classmethod
    def from_query(cls, query: Mapping[str, str], levels: Collection[int]) -> QueueFilter:
        """Parse the page's query parameters; ValueError with a message for a bad one."""
        level = _number(query, "level", int)
        if level is not None and level not in levels:
            raise ValueError(f"level {level}: not a level of this run ({', '.join(map(str, sorted(levels)))})")
        status = query.get("status") or "all"
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
        f = cls(level=level, method=query.get("method") or None, score=query.get("score") or None,
                min_score=_number(query, "min", float), max_score=_number(query, "max", float),
                disagreement=query.get("disagreement", "") in ("1", "true", "yes"), status=status)
        if (f.min_score is not None or f.max_score is not None) and f.score is None:
            raise ValueError("a score range needs the score's name (score=...)")
        return f

    def keeps(self, item: ReviewItem, mine: Decision | None, disagreeing: Collection[str]) -> bool:
        """Whether ``item`` (with this reviewer's latest decision ``mine``) passes the filter."""
        if self.level is not None and item.level != self.level:
            return False
        if self.method is not None and item.method != self.method:
            return False
        if self.score is not None and not self._score_ok(item.scores.get(self.score)):
            return False
        if self.disagreement and item.id not in disagreeing:
            return False
        return _status_ok(self.status, mine)

    def _score_ok(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return ((self.min_score is None or value >= self.min_score)
                and (self.max_score is None or value <= self.max_score))


def _status_ok(status: str, mine: Decision | None) -> bool:
    if status == "open":
        return mine is None
    if status == "decided":
        return mine is not None and mine.decision != "skip"
    if status == "skipped":
        return mine is not None and mine.decision == "skip"
    return True


def _number(query: Mapping[str, str], key: str, kind: type) -> int | float | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r}: expected a{'n integer' if kind is int else ' number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}={raw!r}: expected a finite number")
    return value


def select(items: Iterable[ReviewItem], f: QueueFilter, mine: Mapping[str, Decision],
           disagreeing: Collection[str]) -> list[ReviewItem]:
    """The items ``f`` keeps, in run order (the order they were generated, by level)."""
    return [it for it in items if f.keeps(it, mine.get(it.id), disagreeing)]
