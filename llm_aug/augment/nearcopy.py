"""Near-copies of protected (held-out) posts: what the ``leakage`` filter rejects.

Texts are compared on their normalised form (letters and digits only, lower-cased:
:func:`~llm_aug.data.normalize.normalize_for_match`). For a candidate ``c`` and a
protected post ``p``, with ``n``-grams of characters (n = 3):

- **candidate share**: the share of c's characters that lie inside an n-gram also found
  in p ("most of the candidate is protected text");
- **protected share**: the share of p's characters that lie inside an n-gram also found
  in c ("at least half of the protected post reappears": a splice, a wrapped copy);
- **Jaccard** of the two n-gram sets;
- **edit similarity** ``1 - Levenshtein / longer length``, only for pairs whose shorter
  text has at most ``short_chars`` characters (few n-grams, so the shares say little);
- **verbatim span**: the longest run of characters that c repeats from p word for word
  (:mod:`~llm_aug.augment.spans`).

A pair is a near-copy when candidate share >= ``candidate_share`` or protected share >=
``protected_share``, either with at least ``min_shared_chars`` shared characters, or
Jaccard >= ``jaccard``, or (short pairs) edit similarity >= ``edit_similarity``, or the
verbatim span is at least ``span_chars`` characters or ``span_share`` of p, whichever is
smaller, and never under ``span_min_chars``: a leak whatever its ratio (a splice of 40%
of p onto another post stays under every share). Protected posts shorter than
``span_min_post`` are left to the other rules: 40% of one is a stock phrase's length.

Shares count characters, not n-grams: editing one character breaks up to n n-grams
but only one character, so a copy with 20% of its characters changed still shares
~70% of them (its n-gram containment falls to ~50%). The minimum of shared characters
keeps stock phrases (好想离开这个世界, 8 characters, in dozens of unrelated posts) from
making every post that quotes them a leak; ``span_min_chars`` does the same for spans
(真的好想离开这个世界 is 10 characters). ``bench/leakage.py`` measures the rules and sweeps
the span thresholds.

Search is an inverted index: sparse n-gram incidence matrices whose products touch only
pairs that share an n-gram, computed in chunks of candidates, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import sparse

from llm_aug.augment.spans import SpanIndex
from llm_aug.augment.textsim import ngrams, rows_csr
from llm_aug.data.normalize import normalize_for_match

_CHUNK = 2048  # candidates per sparse product


class NearCopyRules(BaseModel):
    """Thresholds of a near-copy (see the module docstring); defaults measured by ``bench/leakage.py``."""

    model_config = ConfigDict(extra="forbid")
    candidate_share: float = Field(0.6, ge=0.0, le=1.0, description="share of the text's characters")
    protected_share: float = Field(0.5, ge=0.0, le=1.0, description="share of the protected post's characters")
    min_shared_chars: int = Field(10, ge=1, description="both shares count only with this many shared characters")
    jaccard: float = Field(0.5, ge=0.0, le=1.0, description="of the two n-gram sets")
    short_chars: int = Field(16, ge=0, description="pairs whose shorter text is this short: edit similarity too")
    edit_similarity: float = Field(0.75, ge=0.0, le=1.0)
    span_chars: int = Field(16, ge=1, description="a verbatim run this long is a leak")
    span_share: float = Field(0.3, ge=0.0, le=1.0, description="or this share of the protected post, if shorter")
    span_min_chars: int = Field(8, ge=3, description="never a run shorter than this (stock phrases)")
    span_min_post: int = Field(20, ge=0, description="protected posts shorter than this: no span rule")

    def span_needed(self, protected_chars: np.ndarray) -> np.ndarray:
        """The verbatim run that makes a leak, per protected post length (inf: no span rule)."""
        by_share = np.ceil(self.span_share * protected_chars - 1e-9)
        needed = np.maximum(self.span_min_chars, np.minimum(self.span_chars, by_share))
        return np.where(protected_chars >= self.span_min_post, needed, np.inf)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"containment", "containment_min_shingles"} & set(data):
            raise ValueError("containment / containment_min_shingles were replaced by candidate_share, "
                             "protected_share and min_shared_chars (docs/augment.md)")
        return data


class NearCopy(NamedTuple):
    """One text's closest protected post: its index (-1: none shares an n-gram), score, reason."""

    index: int
    score: float
    reason: str | None


class _Grams:
    """Normalised texts as sparse matrices over a fixed n-gram vocabulary.

    ``sets`` (texts x vocab, 0/1), ``positions`` (n-gram occurrences x vocab),
    ``cover`` (characters x occurrences: which characters each occurrence spans) and
    ``owner`` (texts x characters). Occurrences of n-grams outside the vocabulary are
    left out: they cannot be shared.
    """

    def __init__(self, norm: Sequence[str], n: int, vocab: dict[str, int], grow: bool) -> None:
        self.lengths = np.array([len(s) for s in norm], dtype=np.int64)
        ids, starts, spans, set_rows, distinct = [], [], [], [], []
        offset = 0
        for s in norm:
            grams = ngrams(s, n)
            known = [(i, vocab.setdefault(g, len(vocab)) if grow else vocab.get(g)) for i, g in enumerate(grams)]
            known = [(i, j) for i, j in known if j is not None]
            ids += [j for _, j in known]
            starts += [offset + i for i, _ in known]
            spans += [min(n, len(s))] * len(known)
            set_rows.append(sorted({j for _, j in known}))
            distinct.append(len(set(grams)))
            offset += len(s)
        width, k = max(len(vocab), 1), len(ids)
        self.distinct = np.array(distinct, dtype=np.float64)
        self.sets = rows_csr(set_rows, width)
        self.positions = sparse.csr_matrix((np.ones(k), (np.arange(k), ids)), shape=(k, width))
        span = np.array(spans, dtype=np.int64)
        chars = np.repeat(np.array(starts, dtype=np.int64), span) + _ranges(span)
        self.cover = sparse.csr_matrix((np.ones(len(chars)), (chars, np.repeat(np.arange(k), span))),
                                       shape=(offset, k))
        owner = np.repeat(np.arange(len(norm)), self.lengths)
        self.owner = sparse.csr_matrix((np.ones(offset), (owner, np.arange(offset))), shape=(len(norm), offset))

    def covered(self, other_sets: sparse.csr_matrix) -> sparse.csr_matrix:
        """(texts x others): how many of each text's characters lie in an n-gram of the other."""
        hits = self.positions @ other_sets.T.tocsc()
        chars = (self.cover @ hits).tocsr()
        chars.data[:] = 1.0
        return (self.owner @ chars).tocsr()


def _ranges(spans: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s)`` for each ``s`` in ``spans``."""
    if not len(spans):
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(spans) - spans, spans)
    return np.arange(int(spans.sum())) - starts


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions): Myers' bit-parallel algorithm."""
    if not a or not b:
        return len(a) + len(b)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    mask, last = (1 << len(a)) - 1, 1 << (len(a) - 1)
    pv, mv, dist = mask, 0, len(a)
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph, mh = mv | (~(xh | pv) & mask), pv & xh
        dist += 1 if ph & last else -1 if mh & last else 0
        ph, mh = ((ph << 1) | 1) & mask, (mh << 1) & mask
        pv, mv = mh | (~(xv | ph) & mask), ph & xv
    return dist


def edit_similarity(a: str, b: str) -> float:
    """``1 - levenshtein(a, b) / max(len)`` of the normalised texts (1.0 for two empty texts)."""
    a, b = normalize_for_match(a), normalize_for_match(b)
    longer = max(len(a), len(b))
    return 1.0 - levenshtein(a, b) / longer if longer else 1.0


class _Pairs(NamedTuple):
    """Every (candidate, protected) pair of a chunk that shares an n-gram, with its measures."""

    rows: np.ndarray
    cols: np.ndarray
    len_c: np.ndarray
    len_p: np.ndarray
    share_c: np.ndarray
    chars_c: np.ndarray
    share_p: np.ndarray
    chars_p: np.ndarray
    jaccard: np.ndarray
    edit: np.ndarray
    span: np.ndarray


class NearCopyIndex:
    """Protected posts to check texts against (see the module docstring for the rules)."""

    def __init__(self, texts: Sequence[str], ids: Sequence[str] | None = None,
                 rules: NearCopyRules | None = None, n: int = 3) -> None:
        self.rules, self.n = rules or NearCopyRules(), n
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        self._norm = [normalize_for_match(t) for t in texts]
        self._vocab: dict[str, int] = {}
        self._grams = _Grams(self._norm, n, self._vocab, grow=True)
        r = self.rules
        self._spans = SpanIndex([t if len(t) >= r.span_min_post else "" for t in self._norm], r.span_min_chars)

    def __len__(self) -> int:
        return len(self._norm)

    def check(self, texts: Sequence[str]) -> list[NearCopy]:
        """Each text's closest protected post, with a reason when it is a near-copy."""
        out: list[NearCopy] = []
        for start in range(0, len(texts), _CHUNK):
            out += self._check_chunk([normalize_for_match(t) for t in texts[start:start + _CHUNK]])
        return out

    def _pairs(self, norm: list[str]) -> _Pairs:
        cand = _Grams(norm, self.n, self._vocab, grow=False)
        prot = self._grams
        inter = _sorted(cand.sets @ prot.sets.T)
        rows = np.repeat(np.arange(inter.shape[0]), np.diff(inter.indptr))
        cols = inter.indices
        chars_c = _aligned(cand.covered(prot.sets), inter)
        chars_p = _aligned(prot.covered(cand.sets).T, inter)
        len_c, len_p = cand.lengths[rows], prot.lengths[cols]
        union = cand.distinct[rows] + prot.distinct[cols] - inter.data
        return _Pairs(rows, cols, len_c, len_p, chars_c / np.maximum(len_c, 1), chars_c,
                      chars_p / np.maximum(len_p, 1), chars_p, inter.data / np.maximum(union, 1),
                      self._edits(norm, rows, cols, len_c, len_p), self._span_lengths(norm, rows, cols))

    def _span_lengths(self, norm: list[str], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Longest verbatim run of each pair, where it is >= ``span_min_chars`` (0 elsewhere)."""
        found = [(r, p, run) for r, text in enumerate(norm) for p, run in self._spans.runs(text).items()]
        span = np.zeros(len(rows))
        if found:
            width = len(self._norm)
            r, p, run = (np.array(x, dtype=np.int64) for x in zip(*found))
            # Pairs are sorted by (row, col); a run of >= n characters always shares an n-gram,
            # so only a run shorter than a (custom) n can miss its pair: it has no n-gram measures.
            keys, want = rows * width + cols, r * width + p
            at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
            hit = (keys[at] == want) if len(keys) else np.zeros(len(want), dtype=bool)
            span[at[hit]] = run[hit]
        return span

    def _edits(self, norm: list[str], rows: np.ndarray, cols: np.ndarray, len_c: np.ndarray,
               len_p: np.ndarray) -> np.ndarray:
        """Edit similarity of the short pairs that could reach the threshold (0 elsewhere)."""
        r = self.rules
        shorter, longer = np.minimum(len_c, len_p), np.maximum(len_c, len_p)
        # 1 - distance / longer <= shorter / longer: pairs of very unequal length cannot pass.
        todo = (shorter <= r.short_chars) & (shorter >= r.edit_similarity * longer)
        edit = np.zeros(len(rows))
        for k in np.flatnonzero(todo):
            edit[k] = 1.0 - levenshtein(norm[rows[k]], self._norm[cols[k]]) / max(longer[k], 1)
        return edit

    def _check_chunk(self, norm: list[str]) -> list[NearCopy]:
        p, r = self._pairs(norm), self.rules
        by_prot = (p.share_p >= r.protected_share) & (p.chars_p >= r.min_shared_chars)
        by_cand = (p.share_c >= r.candidate_share) & (p.chars_c >= r.min_shared_chars)
        by_jac, by_edit = p.jaccard >= r.jaccard, p.edit >= r.edit_similarity
        by_span = (p.span > 0) & (p.span >= r.span_needed(p.len_p))
        leak = by_prot | by_cand | by_jac | by_edit | by_span
        score = np.maximum.reduce([p.jaccard, p.edit, np.where(p.chars_c >= r.min_shared_chars, p.share_c, 0.0),
                                   np.where(p.chars_p >= r.min_shared_chars, p.share_p, 0.0),
                                   np.minimum(p.span / np.maximum(p.len_p, 1), 1.0)])
        # Per candidate, the pair with the highest key (a leaking pair outranks any other);
        # pairs come grouped by candidate, so the last of each group after sorting wins.
        order = np.lexsort((leak * 2.0 + score, p.rows))
        last = order[np.r_[p.rows[order][1:] != p.rows[order][:-1], True]] if len(order) else order
        best = np.full(len(norm), -1, dtype=np.int64)
        best[p.rows[last]] = last
        out = []
        for k in best:
            if k < 0:
                out.append(NearCopy(-1, 0.0, None))
            else:
                out.append(NearCopy(int(p.cols[k]), float(score[k]), self._reason(p, int(k)) if leak[k] else None))
        return out

    def _reason(self, p: _Pairs, k: int) -> str:
        r, who = self.rules, f"protected post {self.ids[p.cols[k]]}"
        n_p, n_c = int(p.len_p[k]), int(p.len_c[k])
        if p.share_p[k] >= r.protected_share and p.chars_p[k] >= r.min_shared_chars:
            return f"{p.share_p[k]:.0%} of {who} reappears ({int(p.chars_p[k])} of {n_p} chars)"
        if p.share_c[k] >= r.candidate_share and p.chars_c[k] >= r.min_shared_chars:
            return f"{p.share_c[k]:.0%} of the text is from {who} ({int(p.chars_c[k])} of {n_c} chars)"
        if p.span[k] > 0 and p.span[k] >= r.span_needed(p.len_p[k:k + 1])[0]:
            return f"{int(p.span[k])} chars of {who} reappear verbatim ({p.span[k] / max(n_p, 1):.0%} of its {n_p})"
        if p.jaccard[k] >= r.jaccard:
            return f"Jaccard {p.jaccard[k]:.2f} with {who}"
        return f"edit similarity {p.edit[k]:.2f} with {who} (short post)"


def _sorted(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    """``matrix`` as CSR with sorted column indices and no stored zeros."""
    out = sparse.csr_matrix(matrix)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _aligned(matrix: sparse.spmatrix, like: sparse.csr_matrix) -> np.ndarray:
    """The values of ``matrix`` at the stored entries of ``like``, in ``like``'s order.

    Both have the same entries here (a character is covered iff an n-gram is shared),
    so this is normally a plain copy of the data array.
    """
    m = _sorted(matrix)
    if np.array_equal(m.indptr, like.indptr) and np.array_equal(m.indices, like.indices):
        return m.data.astype(np.float64)
    rows = np.repeat(np.arange(like.shape[0]), np.diff(like.indptr))
    return np.asarray(m[rows, like.indices], dtype=np.float64).ravel() if len(rows) else np.zeros(0)
