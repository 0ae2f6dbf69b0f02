"""Similarity verdicts: leakage, exact and near duplicates, copied exemplars.

Functions and incremental checkers over texts and thresholds (no config objects) so the
filter pipeline, reports and one-off probes share them. Each returns one ``(score,
reason)`` per input, ``reason`` None when the text passes. The checkers that compare a
row with earlier rows (:class:`ExactDups`, :class:`NearDups`) keep state across calls,
so a run filters each round's candidates once, against everything kept before.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from llm_aug.augment.nearcopy import NearCopyIndex, NearCopyRules
from llm_aug.augment.simindex import GramCoder, PrefixIndex
from llm_aug.augment.textsim import shingles
from llm_aug.data.io import Row
from llm_aug.data.normalize import normalize_for_match

log = logging.getLogger(__name__)

Verdict = tuple[float, "str | None"]  # (score, reject reason or None)


def leakage_verdicts(texts: Sequence[str], protected: Sequence[Row],
                     rules: NearCopyRules | None = None, n: int = 3) -> list[Verdict]:
    """Reject texts that are near-copies of any protected post (:mod:`~llm_aug.augment.nearcopy`).

    Score: the highest similarity to a protected post that the rules can decide on.
    """
    index = NearCopyIndex([r.text for r in protected], [r.id for r in protected], rules, n)
    return [(m.score, m.reason) for m in index.check(texts)]


class ExactDups:
    """Exact duplicates (same normalised text) of training posts and of earlier rows.

    Incremental: each :meth:`verdicts` call sees the rows of earlier calls as earlier rows.
    Only a 64-bit digest of each text is kept, so memory stays small for 100,000s of rows.
    """

    def __init__(self, train: Sequence[Row]) -> None:
        self._train = {_digest(r.text): r.id for r in train}
        self._seen: dict[bytes, str] = {}

    def verdicts(self, rows: Sequence[tuple[str, str]]) -> list[Verdict]:
        """Reject (id, text) pairs whose text equals a training post or an earlier row."""
        out: list[Verdict] = []
        for rid, text in rows:
            key = _digest(text)
            if key in self._train:
                out.append((1.0, f"same text as training post {self._train[key]}"))
            elif key in self._seen:
                out.append((1.0, f"same text as synthetic row {self._seen[key]}"))
            else:
                self._seen[key] = rid
                out.append((0.0, None))
        return out


def _digest(text: str) -> bytes:
    return hashlib.blake2b(normalize_for_match(text).encode("utf-8"), digest_size=8).digest()


def exemplar_verdicts(rows: Sequence[tuple[str, Sequence[str]]], texts_by_id: Mapping[str, str],
                      jaccard: float, containment: float, min_shingles: int,
                      n: int = 3) -> list[Verdict]:
    """Reject (text, exemplar_ids) pairs too similar to one of their own exemplars."""
    missing = Counter(e for _, ids in rows for e in ids if e not in texts_by_id)
    if missing:
        log.warning("exemplar_copy: %d exemplar id(s) unknown, e.g. %s", len(missing), next(iter(missing)))
    out: list[Verdict] = []
    exemplar: dict[str, frozenset[str]] = {}  # a few hundred exemplars serve thousands of rows
    for text, ids in rows:
        mine, best, reason = shingles(text, n), 0.0, None
        for eid in ids:
            if eid not in texts_by_id:
                continue
            other = exemplar.get(eid)
            if other is None:
                other = exemplar[eid] = shingles(texts_by_id[eid], n)
            inter = len(mine & other)
            jac = inter / max(len(mine | other), 1)
            small = min(len(mine), len(other))
            con = inter / small if small >= min_shingles else 0.0
            best = max(best, jac, con)
            if reason is None and (jac >= jaccard or con >= containment):
                reason = f"copies exemplar {eid} (Jaccard {jac:.2f}, containment {con:.2f})"
        out.append((best, reason))
    return out


class NearDups:
    """Near-duplicates (char n-gram Jaccard >= ``jaccard``) through a :class:`PrefixIndex`.

    ``reference`` rows (e.g. training posts) are indexed up front; with ``grow`` every
    passing row is added too, so a later row near-duplicating an earlier *kept* row is
    rejected (the first of a cluster stays). Score: the highest Jaccard found, exact when
    it reaches the threshold and a lower bound below it (:mod:`~llm_aug.augment.simindex`).
    """

    def __init__(self, jaccard: float, coder: GramCoder, *, what: str, reference: Sequence[Row] = (),
                 grow: bool = False) -> None:
        self.jaccard, self.what, self.grow = jaccard, what, grow
        self._index = PrefixIndex(jaccard, coder)
        self._ids: list[str] = []
        for r in reference:
            self._index.add(r.text)
            self._ids.append(r.id)
        coder.forget()

    def verdicts(self, rows: Sequence[tuple[str, str]]) -> list[Verdict]:
        """One verdict per (id, text) row, in order; passing rows join the index when growing."""
        out: list[Verdict] = []
        for rid, text in rows:
            best = self._index.best(text)
            if best.jaccard >= self.jaccard:
                out.append((best.jaccard, f"Jaccard {best.jaccard:.2f} with {self.what} {self._ids[best.index]}"))
                continue
            out.append((best.jaccard, None))
            if self.grow:
                self._index.add(text)
                self._ids.append(rid)
        return out
