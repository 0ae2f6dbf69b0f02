"""Character n-gram similarity between short Chinese posts.

Posts are compared on a normalised form (letters and digits only, lower-cased) so
that punctuation, spacing and emoji edits do not hide a copy. Similarities are exact
(not MinHash estimates): shingle sets become a sparse 0/1 matrix and one sparse
product gives every pairwise intersection size. At this project's scale (thousands
of synthetic rows against ~1k real posts) that takes milliseconds and has neither
false negatives nor tuning knobs; the work is chunked so memory stays bounded
(about ``_CELLS`` dense cells at a time) for larger sets.

This module is also the base the other similarity modules build on: :func:`ngrams` (the
one n-gram split, used by :mod:`.simindex` and :mod:`.nearcopy` too) and :func:`rows_csr`
(the one sets-to-sparse-rows builder); the normalised form is
:func:`llm_aug.data.normalize.normalize_for_match`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
from scipy import sparse

from llm_aug.data.normalize import normalize_for_match

_CELLS = 8_000_000  # dense cells per chunk: ~32 MB of float32


def ngrams(norm: str, n: int) -> list[str]:
    """Character ``n``-grams of an already normalised text, in order, repeats included.

    A text shorter than ``n`` is its own single n-gram (a 2-character post still
    compares), the empty text has none.
    """
    if len(norm) <= n:
        return [norm] if norm else []
    return [norm[i:i + n] for i in range(len(norm) - n + 1)]


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Set of character ``n``-grams of the normalised text (the whole text if shorter)."""
    return frozenset(ngrams(normalize_for_match(text), n))


def rows_csr(rows: Sequence[Sequence[int]], width: int, dtype: type = np.float64) -> sparse.csr_matrix:
    """0/1 sparse matrix with one row per list of column ids (at least one column wide)."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.fromiter((j for r in rows for j in r), dtype=np.int64, count=int(indptr[-1]))
    data = np.ones(len(indices), dtype=dtype)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), max(width, 1)))


class Best(NamedTuple):
    """Per query: best Jaccard and containment against an index, and where they occur."""

    jaccard: np.ndarray
    jaccard_arg: np.ndarray
    containment: np.ndarray
    containment_arg: np.ndarray


class ShingleIndex:
    """A fixed set of texts to compare queries against (exact Jaccard / containment).

    ``jaccard`` = |A∩B| / |A∪B|; ``containment`` = |A∩B| / min(|A|, |B|), i.e. how
    much of the shorter text occurs in the longer one.
    """

    def __init__(self, texts: Iterable[str], n: int = 3) -> None:
        self.n = n
        vocab: dict[str, int] = {}
        add = vocab.setdefault
        # Only n-gram ids are kept, not the sets of strings: a large reference (100,000
        # training posts) would otherwise hold hundreds of MB of small strings.
        ids = [[add(g, len(vocab)) for g in shingles(t, n)] for t in texts]
        self.sizes = np.array([len(x) for x in ids], dtype=np.float32)
        self._mat = rows_csr(ids, len(vocab), np.float32)
        self._vocab = vocab
        self._index_t = self._mat.T.tocsc()

    def __len__(self) -> int:
        return len(self.sizes)

    def intersections(self, query_sets: Sequence[frozenset[str]] | None,
                      query_matrix: sparse.csr_matrix | None = None
                      ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (start, |A∩B| dense chunk, query sizes) for row chunks of the queries.

        ``query_sets`` None: the indexed texts themselves (``query_matrix`` is then ignored).
        """
        if query_sets is None:
            query_matrix = self._mat
        elif query_matrix is None:
            get = self._vocab.get
            # Shingles the index never saw cannot intersect; they still count in |A|.
            ids = [[j for j in map(get, s) if j is not None] for s in query_sets]
            query_matrix = rows_csr(ids, self._mat.shape[1], np.float32)
        qsizes = (self.sizes if query_sets is None else np.array([len(s) for s in query_sets], dtype=np.float32))
        step = max(1, _CELLS // max(len(self), 1))
        for start in range(0, len(qsizes), step):
            inter = (query_matrix[start : start + step] @ self._index_t).toarray()
            yield start, inter, qsizes[start : start + step]

    def jaccard_chunks(self, query_sets: Sequence[frozenset[str]] | None,
                       query_matrix: sparse.csr_matrix | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, Jaccard chunk) between the queries and the indexed texts."""
        for start, inter, qs in self.intersections(query_sets, query_matrix):
            union = qs[:, None] + self.sizes[None, :] - inter
            yield start, np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

    def self_jaccard_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, Jaccard chunk) of the indexed texts against each other."""
        return self.jaccard_chunks(None)

    def best(self, texts: Sequence[str], min_size: int = 0) -> Best:
        """Highest Jaccard and containment of each text against the index.

        Containment counts only pairs where both sides have >= ``min_size`` shingles
        (that a 3-character text occurs in a long post says nothing).
        """
        sets = [shingles(t, self.n) for t in texts]
        jac, jarg = np.zeros(len(sets), np.float32), np.full(len(sets), -1, np.int64)
        con, carg = np.zeros(len(sets), np.float32), np.full(len(sets), -1, np.int64)
        if not sets or not len(self):
            return Best(jac, jarg, con, carg)
        big = self.sizes >= max(min_size, 1)
        for start, inter, qs in self.intersections(sets):
            rows, stop = np.arange(inter.shape[0]), start + inter.shape[0]
            union = qs[:, None] + self.sizes[None, :] - inter
            sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            jarg[start:stop] = sim.argmax(axis=1)
            jac[start:stop] = sim[rows, jarg[start:stop]]
            small = np.minimum(qs[:, None], self.sizes[None, :])
            ok = (small > 0) & big[None, :] & (qs[:, None] >= max(min_size, 1))
            sim = np.divide(inter, small, out=np.zeros_like(inter), where=ok)
            carg[start:stop] = sim.argmax(axis=1)
            con[start:stop] = sim[rows, carg[start:stop]]
        return Best(jac, jarg, con, carg)


def jaccard(a: str, b: str, n: int = 3) -> float:
    """Exact Jaccard similarity of two texts' character ``n``-gram sets."""
    sa, sb = shingles(a, n), shingles(b, n)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def containment(a: str, b: str, n: int = 3) -> float:
    """Share of the smaller shingle set found in the other one."""
    sa, sb = shingles(a, n), shingles(b, n)
    small = min(len(sa), len(sb))
    return len(sa & sb) / small if small else 0.0
