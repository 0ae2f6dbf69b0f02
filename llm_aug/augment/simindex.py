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
every pair found is verified exactly. The order is any total order the index and its
queries agree on (exactness does not depend on which); rare n-grams first keep the
posting lists short. The start is rarest in a reference corpus (the training posts),
but the texts indexed may repeat n-grams that corpus rarely showed, so the index moves
an n-gram later when its posting list grows past a limit (:class:`PrefixIndex`). A text
first met at the query's i-th prefix n-gram shares at most ``|x| - i`` n-grams with it,
so texts too long to reach the threshold with that many are skipped (PPJoin's position
filter). The work per query then follows the texts that share a *rare* n-gram with it,
not all those sharing a common one; posts recombined from a small pool of real posts
still make that grow with the posts kept, at about a quarter of the former slope
(docs/scale.md).

Below the threshold a query only sees pairs that share a prefix n-gram: the reported
best similarity is then a lower bound (0 when nothing was found), not the exact maximum.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from llm_aug.augment.textsim import ngrams
from llm_aug.data.normalize import normalize_for_match

_EPS = 1e-9  # t * size is computed in floats: never round a needed overlap up
_GROWTH = 2  # a re-keyed list may grow to this many times its length before the next re-keying
CAP = 32  # posting entries before an n-gram is first re-keyed (bench/scale_augment.py)


class Match(NamedTuple):
    """Best indexed text found for a query: its position (-1: none) and Jaccard."""

    index: int
    jaccard: float


def gram_set(text: str, n: int) -> set[str]:
    """The normalised text's character n-grams (the whole text if shorter), as in ``textsim.shingles``."""
    return set(ngrams(normalize_for_match(text), n))


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
    """Texts added one at a time; :meth:`best` finds the most similar one at or above ``threshold``.

    The order starts as the coder's (rarest in the reference corpus first), but the texts
    indexed may repeat n-grams that corpus never showed or rarely did (a generator asked
    for 100,000 posts reuses its phrases): a posting list would then grow with every text.
    So when a posting list outgrows its limit (``cap`` at first, then twice its length),
    its n-gram is *re-keyed*: its frequency among the indexed texts is added to its
    reference frequency, which moves it later in this index's order, and every text it
    was a prefix n-gram of is re-indexed (the n-gram leaves that prefix and the text's
    next n-gram enters). The index is always exactly the prefix index of its current order,
    so results stay exact; keys only grow, so re-keying ends, and the doubling limits keep
    its cost amortised. ``scanned`` and ``verified`` count the posting entries queries read
    and the pairs they compared; ``rekeyed`` the re-keyings.
    """

    def __init__(self, threshold: float, coder: GramCoder, cap: int | None = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        cap = CAP if cap is None else cap
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        self.t, self.coder, self.cap = threshold, coder, cap
        self._postings: dict[int, list[int]] = {}
        self._sets: list[tuple[int, ...]] = []  # ids, prefix first; a tuple is a fifth of a frozenset's size
        self._df = array("l")  # n-gram id -> indexed texts holding it
        self._keys: list[int] = []  # this index's order once an n-gram was re-keyed (else the coder's)
        self._limit: dict[int, int] = {}
        self.scanned = self.verified = self.rekeyed = 0

    def __len__(self) -> int:
        return len(self._sets)

    def _prefix(self, size: int) -> int:
        return size - math.ceil(self.t * size - _EPS) + 1

    def _ordered(self, grams: Sequence[int]) -> list[int]:
        """``grams`` (the coder's ids) in this index's order."""
        if not self.rekeyed:
            return list(grams)
        keys, base = self._keys, self.coder._keys
        if len(keys) < len(base):  # n-grams the coder met since
            keys.extend(base[len(keys):])
        return sorted(grams, key=keys.__getitem__)

    def add(self, text: str) -> int:
        """Index ``text``; returns its position."""
        grams = self._ordered(self.coder.encode(text))
        pos = len(self._sets)
        self._sets.append(tuple(grams))
        df = self._df
        if len(df) < len(self.coder._keys):  # zeros for the n-grams the coder met since
            df.frombytes(bytes(df.itemsize * (len(self.coder._keys) - len(df))))
        for j in grams:
            df[j] += 1
        full = []
        for j in grams[:self._prefix(len(grams))]:
            posting = self._postings.setdefault(j, [])
            posting.append(pos)
            if len(posting) > self._limit.get(j, self.cap):
                full.append(j)
        while full:
            full += self._rekey(full.pop())
        return pos

    def _rekey(self, j: int) -> list[int]:
        """Move n-gram ``j`` to its current frequency in the order; returns the lists that overfill."""
        posting, base = self._postings[j], self.coder._keys[j]
        if len(posting) <= self._limit.get(j, self.cap):
            return []
        key = ((base >> 32) + self._df[j]) << 32 | (base & 0xFFFFFFFF)
        if not self.rekeyed:
            self._keys = list(self.coder._keys)
        if key <= self._keys[j]:  # no later than it is: nothing to move
            self._limit[j] = _GROWTH * len(posting)
            return []
        self._keys[j] = key
        self.rekeyed += 1
        keys, keep, full = self._keys, [], []
        for pos in posting:
            # A stored text lists its prefix n-grams, then the rest, and every prefix key
            # is below every other key (keys only grow; a prefix key grows only here).
            grams = self._sets[pos]
            p = self._prefix(len(grams))
            if p == len(grams) or key < keys[(m := min(grams[p:], key=keys.__getitem__))]:
                keep.append(pos)
                continue
            # j leaves this text's prefix; its rarest other n-gram takes its place.
            swapped = list(grams)
            i, k = swapped.index(j), swapped.index(m)
            swapped[i], swapped[k] = m, j
            self._sets[pos] = tuple(swapped)
            other = self._postings.setdefault(m, [])
            other.append(pos)
            if len(other) == self._limit.get(m, self.cap) + 1:
                full.append(m)
        self._postings[j] = keep
        # Doubling: an n-gram that keeps filling its list is re-keyed O(log n) times.
        self._limit[j] = max(_GROWTH * self._limit.get(j, self.cap), _GROWTH * len(keep))
        return full

    def best(self, text: str) -> Match:
        """The indexed text with the highest Jaccard among those found (ties: earliest)."""
        grams = self._ordered(self.coder.encode(text))
        size = len(grams)
        if not size:
            return Match(-1, 0.0)
        t = self.t
        lo, hi = t * size - _EPS, size / t + _EPS
        query, seen = set(grams), set()
        best, arg = 0.0, -1
        for i, j in enumerate(grams[:self._prefix(size)]):
            posting = self._postings.get(j, ())
            self.scanned += len(posting)
            # A text first met at the query's i-th n-gram shares at most size - i of them
            # (if it reaches t, j is the smallest n-gram the two share): too long a text
            # cannot reach t * (|x| + |y|) / (1 + t) shared n-grams (PPJoin's position filter).
            hi = min(hi, (size - i) * (1 + t) / t - size + _EPS)
            for pos in posting:
                if pos in seen:
                    continue
                seen.add(pos)
                other = self._sets[pos]
                if not lo <= len(other) <= hi:
                    continue
                self.verified += 1
                inter = len(query.intersection(other))
                jac = inter / (size + len(other) - inter)
                if jac > best or (jac == best and jac > 0 and pos < arg):
                    best, arg = jac, pos
        return Match(arg, best)
