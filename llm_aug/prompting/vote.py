"""Aggregate several sampled answers (self-consistency) or label log-probabilities."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def vote(labels: Sequence[int | None], ordinal: bool = True) -> tuple[int | None, float]:
    """Majority label over the valid answers and its share of *all* samples.

    Invalid answers (None) count in the confidence's denominator, so 3 of 5 samples
    saying 7 and 2 unparseable gives (7, 0.6). A tie goes, for an ordinal scheme, to
    the median of the tied labels, the lower middle one when their number is even
    (tie 3 vs 5 -> 3; 2/4/6 -> 4); for a nominal scheme, to the smallest label id.
    All invalid or no samples -> (None, 0.0).
    """
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return None, 0.0
    top = max(counts.values())
    tied = sorted(label for label, n in counts.items() if n == top)
    winner = tied[(len(tied) - 1) // 2] if ordinal else tied[0]
    return winner, top / len(labels)


def score_from_logprobs(label_logprobs: dict[int, float]) -> tuple[int | None, float]:
    """Most probable label and its probability renormalised over the given labels.

    ``label_logprobs`` maps each candidate label to the log-probability of its answer
    token(s); labels missing from the map count as impossible. Ties go to the smaller
    label. Empty or all ``-inf`` -> (None, 0.0).
    """
    finite = {label: lp for label, lp in label_logprobs.items() if lp is not None and math.isfinite(lp)}
    if not finite:
        return None, 0.0
    peak = max(finite.values())
    weights = {label: math.exp(lp - peak) for label, lp in finite.items()}  # shift avoids underflow
    total = sum(weights.values())
    best = min(label for label, w in weights.items() if w == max(weights.values()))
    return best, weights[best] / total
