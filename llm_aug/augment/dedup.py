"""Similarity verdicts: leakage, exact and near duplicates, copied exemplars.

Pure functions over texts and thresholds (no config objects) so the filter pipeline,
reports and one-off probes share them. Each returns one ``(score, reason)`` per
input, ``reason`` None when the text passes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from llm_aug.augment.nearcopy import NearCopyIndex, NearCopyRules
from llm_aug.augment.textsim import (
    ShingleIndex,
    normalize_for_match,
    self_pairs,
    shingles,
)
from llm_aug.data.io import Row

log = logging.getLogger(__name__)

Verdict = tuple[float, "str | None"]  # (score, reject reason or None)


def leakage_verdicts(texts: Sequence[str], protected: Sequence[Row],
                     rules: NearCopyRules | None = None, n: int = 3) -> list[Verdict]:
    """Reject texts that are near-copies of any protected post (:mod:`~llm_aug.augment.nearcopy`).

    Score: the highest similarity to a protected post that the rules can decide on.
    """
    index = NearCopyIndex([r.text for r in protected], [r.id for r in protected], rules, n)
    return [(m.score, m.reason) for m in index.check(texts)]


def exact_dup_verdicts(rows: Sequence[tuple[str, str]], train: Sequence[Row]) -> list[Verdict]:
    """Reject (id, text) pairs whose normalised text equals a training post or an earlier row."""
    train_keys = {normalize_for_match(r.text): r.id for r in train}
    seen: dict[str, str] = {}
    out: list[Verdict] = []
    for rid, text in rows:
        key = normalize_for_match(text)
        if key in train_keys:
            out.append((1.0, f"same text as training post {train_keys[key]}"))
        elif key in seen:
            out.append((1.0, f"same text as synthetic row {seen[key]}"))
        else:
            seen.setdefault(key, rid)
            out.append((0.0, None))
    return out


def exemplar_verdicts(rows: Sequence[tuple[str, Sequence[str]]], texts_by_id: Mapping[str, str],
                      jaccard: float, containment: float, min_shingles: int,
                      n: int = 3) -> list[Verdict]:
    """Reject (text, exemplar_ids) pairs too similar to one of their own exemplars."""
    missing = Counter(e for _, ids in rows for e in ids if e not in texts_by_id)
    if missing:
        log.warning("exemplar_copy: %d exemplar id(s) unknown, e.g. %s", len(missing), next(iter(missing)))
    out: list[Verdict] = []
    for text, ids in rows:
        mine, best, reason = shingles(text, n), 0.0, None
        for eid in ids:
            if eid not in texts_by_id:
                continue
            other = shingles(texts_by_id[eid], n)
            inter = len(mine & other)
            jac = inter / max(len(mine | other), 1)
            small = min(len(mine), len(other))
            con = inter / small if small >= min_shingles else 0.0
            best = max(best, jac, con)
            if reason is None and (jac >= jaccard or con >= containment):
                reason = f"copies exemplar {eid} (Jaccard {jac:.2f}, containment {con:.2f})"
        out.append((best, reason))
    return out


def near_dup_verdicts(texts: Sequence[str], reference: Sequence[Row], jaccard: float,
                      n: int = 3) -> list[Verdict]:
    """Reject texts with Jaccard >= ``jaccard`` against any reference post."""
    sim, arg, _, _ = ShingleIndex([r.text for r in reference], n).best(texts)
    return [(float(s), f"Jaccard {s:.2f} with training post {reference[a].id}" if s >= jaccard else None)
            for s, a in zip(sim, arg)]


def self_dup_verdicts(rows: Sequence[tuple[str, str]], jaccard: float, n: int = 3) -> list[Verdict]:
    """Within (id, text) rows, reject a row near-duplicating an earlier row that is kept.

    Greedy in input order, so the first row of a cluster of near-copies stays. Score:
    the highest Jaccard with any earlier row.
    """
    earlier: dict[int, list[tuple[int, float]]] = {}
    for i, j, s in self_pairs([t for _, t in rows], jaccard, n):
        earlier.setdefault(i, []).append((j, s))
    dropped: set[int] = set()
    out: list[Verdict] = []
    for i in range(len(rows)):
        pairs = earlier.get(i, [])
        kept = [(j, s) for j, s in pairs if j not in dropped]
        score = max((s for _, s in pairs), default=0.0)
        if kept:
            dropped.add(i)
            j, s = max(kept, key=lambda p: p[1])
            out.append((score, f"Jaccard {s:.2f} with synthetic row {rows[j][0]}"))
        else:
            out.append((score, None))
    return out
