"""Longest verbatim runs shared with protected posts (the ``span`` rule of :mod:`.nearcopy`).

A candidate that repeats a long stretch of a protected post word for word is a leak
whatever share of either text that stretch is (half of a post spliced onto another post
can stay under every ratio threshold). Runs are found through seeds: every common run of
at least ``seed`` characters starts with a common ``seed``-gram, and a run of length
``L`` is ``L - seed + 1`` consecutive seed hits on one diagonal (candidate position minus
protected position). Protected seed-grams sit in a dict, so a candidate costs one lookup
per character; only real hits (rare: long verbatim runs) cost more. Exact for runs of at
least ``seed`` characters; shorter runs are not reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence


class SpanIndex:
    """Protected texts (already normalised) to find long verbatim runs against."""

    def __init__(self, protected: Sequence[str], seed: int) -> None:
        if seed < 1:
            raise ValueError("seed must be >= 1")
        self.seed = seed
        grams: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for p, text in enumerate(protected):
            for j in range(len(text) - seed + 1):
                grams[text[j:j + seed]].append((p, j))
        self._grams = dict(grams)  # lookups must never add keys

    def runs(self, text: str) -> dict[int, int]:
        """Protected post -> length of its longest verbatim run in ``text`` (only runs >= seed)."""
        grams, k = self._grams, self.seed
        hits: dict[tuple[int, int], list[int]] = defaultdict(list)
        # Most candidates share no seed-gram: a bare membership pass first is the hot loop.
        for i in [i for i in range(len(text) - k + 1) if text[i:i + k] in grams]:
            for p, j in grams[text[i:i + k]]:
                hits[(p, i - j)].append(i)
        best: dict[int, int] = {}
        for (p, _), starts in hits.items():
            longest = _longest_consecutive(starts) + k - 1
            if longest > best.get(p, 0):
                best[p] = longest
        return best


def _longest_consecutive(ascending: list[int]) -> int:
    """Length of the longest stretch of consecutive integers in an ascending list."""
    longest = current = 1
    for a, b in zip(ascending, ascending[1:]):
        current = current + 1 if b == a + 1 else 1
        longest = max(longest, current)
    return longest
