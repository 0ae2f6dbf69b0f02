"""An incremental index that finds every indexed text with char n-gram Jaccard >= a threshold.

The near-duplicate filters compare each candidate with every training post and every
synthetic post kept so far. Comparing all pairs grows with the square of the corpus
(100,000 kept posts are 10^10 pairs); this index is exact at the threshold yet touches
only a few pairs per query, using *prefix filtering* (Chaudhuri et al. 2006; Xiao et al.
2008, "PPJoin"):

Order all n-grams globally, rarest first. If ``J(x, y) >= t`` then x and y share at
least ``ceil(t * |x|)`` n-grams, so the first ``|x| - ceil(t * |x|) + 1`` n-grams of x
(its *prefix*) and the prefix of y share at least one n-gram. Only prefixes are put in
the inverted index and probed, and pairs whose sizes cannot reach ``t`` are skipped;
every pair found is verified exactly. The order is any fixed total order (exactness does
not depend on it); rare n-grams first (document frequency in a reference corpus, e.g. the
training posts) keep the posting lists short, so a query costs about the same whatever
the index holds.

Below the threshold a query only sees pairs that share a prefix n-gram: the reported
best similarity is then a lower bound (0 when nothing was found), not the exact maximum.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from llm_aug.augment.textsim import normalize_for_match

_EPS = 1e-9  # t * size is computed in floats: never round a needed overlap up


class Match(NamedTuple):
    """Best indexed text found for a query: its position (-1: none) and Jaccard."""

    index: int
    jaccard: float


def gram_set(text: str, n: int) -> set[str]:
    """The normalised text's character n-grams (the whole text if shorter), as in ``textsim.shingles``."""
    s = normalize_for_match(text)
    if len(s) <= n:
        return {s} if s else set()
    return {s[i:i + n] for i in range(len(s) - n + 1)}


def document_frequencies(texts: Iterable[str], n: int = 3) -> Counter[str]:
    """In how many of ``texts`` each n-gram occurs (the index's order: rarest first)."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(gram_set(t, n))
    return df


class GramCoder:
    """N-gram ids in the global order, shared by indexes over the same texts.

    Encodings are remembered until :meth:`forget`, so a text checked against two indexes
    (training posts, kept synthetic posts) is split into n-grams once.
    """

    def __init__(self, n: int = 3, frequencies: Counter[str] | None = None) -> None:
        self.n = n
        self._ids: dict[str, int] = {}  # n-gram -> id
        self._keys: list[int] = []  # id -> global order key (rarest first)
        self._memo: dict[str, list[int]] = {}
        # Every n-gram with a frequency gets its id now, so the counts need not be kept:
        # an n-gram first seen later has frequency 0.
        for gram, df in (frequencies or {}).items():
            self._new(gram, df)

    def encode(self, text: str) -> list[int]:
        """The text's n-gram ids, sorted by the global order."""
        got = self._memo.get(text)
        if got is not None:
            return got
        get = self._ids.get
        grams = gram_set(text, self.n)
        ids = [get(g) for g in grams]
        if None in ids:
            ids = [self._new(g) if j is None else j for g, j in zip(grams, ids)]
        ids.sort(key=self._keys.__getitem__)
        self._memo[text] = ids
        return ids  # type: ignore[return-value]

    def _new(self, gram: str, df: int = 0) -> int:
        j = self._ids[gram] = len(self._keys)
        # Frequency first, then a stable hash: a total order that never changes.
        self._keys.append((df << 32) | zlib.crc32(gram.encode("utf-8")))
        return j

    def forget(self) -> None:
        """Drop the remembered encodings (call between batches: memory stays bounded)."""
        self._memo.clear()


class PrefixIndex:
    """Texts added one at a time; :meth:`best` finds the most similar one at or above ``threshold``."""

    def __init__(self, threshold: float, coder: GramCoder) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.t, self.coder = threshold, coder
        self._postings: dict[int, list[int]] = {}
        self._sets: list[tuple[int, ...]] = []  # sorted ids; a tuple is a fifth of a frozenset's size

    def __len__(self) -> int:
        return len(self._sets)

    def _prefix(self, size: int) -> int:
        return size - math.ceil(self.t * size - _EPS) + 1

    def add(self, text: str) -> int:
        """Index ``text``; returns its position."""
        grams = self.coder.encode(text)
        pos = len(self._sets)
        self._sets.append(tuple(grams))
        for j in grams[:self._prefix(len(grams))]:
            self._postings.setdefault(j, []).append(pos)
        return pos

    def best(self, text: str) -> Match:
        """The indexed text with the highest Jaccard among those found (ties: earliest)."""
        grams = self.coder.encode(text)
        size = len(grams)
        if not size:
            return Match(-1, 0.0)
        lo, hi = self.t * size - _EPS, size / self.t + _EPS
        query, seen = set(grams), set()
        best, arg = 0.0, -1
        for j in grams[:self._prefix(size)]:
            for pos in self._postings.get(j, ()):
                if pos in seen:
                    continue
                seen.add(pos)
                other = self._sets[pos]
                if not lo <= len(other) <= hi:
                    continue
                inter = len(query.intersection(other))
                jac = inter / (size + len(other) - inter)
                if jac > best or (jac == best and jac > 0 and pos < arg):
                    best, arg = jac, pos
        return Match(arg, best)
