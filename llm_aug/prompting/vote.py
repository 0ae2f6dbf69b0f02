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


def _as_int(token: str) -> int | None:
    text = token.strip().translate(_FULLWIDTH)
    return int(text) if text.isdigit() else None


_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def label_logprobs(tokens: list[tuple[str, dict[str, float]]] | None, labels: list[int]) -> dict[int, float]:
    """Log-probability of each label at the first digit the model generated.

    ``tokens`` are (sampled token, {alternative: logprob}) pairs from the backend. Where a
    tokenizer splits "10" into "1" + "0", P(10) = P("1") * P("0" next) and P(1) takes the
    rest; that split is only known when the model actually sampled "1" there, otherwise
    the mass of "1" goes to label 1. Empty when no digit was generated.
    """
    start = next((i for i, (tok, _) in enumerate(tokens or []) if _as_int(tok) is not None), None)
    if start is None:
        return {}
    sampled, alts = tokens[start]
    out: dict[int, float] = {}
    for tok, lp in alts.items():
        value = _as_int(tok)
        if value is not None and value in labels:
            out[value] = max(out.get(value, -math.inf), lp)
    if 10 in labels and 1 in out and "10" not in alts and _as_int(sampled) == 1 and start + 1 < len(tokens):
        p_zero = math.exp(tokens[start + 1][1].get("0", -math.inf))
        if 0 < p_zero < 1:
            out[10] = out[1] + math.log(p_zero)
            out[1] = out[1] + math.log1p(-p_zero)
    return out


def vote_shares(labels: Sequence[int | None], scheme_labels: Sequence[int]) -> list[float] | None:
    """Each label's share of the valid sampled answers, in ``scheme_labels`` order (``--samples N``).

    The distribution behind :func:`vote`; None when no sample was valid. Invalid answers are
    left out of the denominator here (a distribution over labels must sum to 1): the row's
    ``confidence`` still counts them.
    """
    counts = Counter(label for label in labels if label is not None)
    total = sum(counts.values())
    if not total:
        return None
    return [counts.get(label, 0) / total for label in scheme_labels]


def logprob_distribution(label_logprobs: dict[int, float], scheme_labels: Sequence[int],
                         n_tokens: dict[int, int] | None = None) -> list[float] | None:
    """Label probabilities from answer-token log-probabilities, length-normalised, summing to 1.

    A label answered in ``n_tokens[label]`` tokens (10 where the tokenizer splits it into
    "1" + "0") scores its mean log-probability per token, so a two-token label is not
    penalised for its length; labels without a log-probability get 0. None when none is finite.
    """
    lengths = n_tokens or {}
    finite = {lab: lp / lengths.get(lab, 1) for lab, lp in label_logprobs.items()
              if lp is not None and math.isfinite(lp) and lab in scheme_labels}
    if not finite:
        return None
    peak = max(finite.values())
    weights = {lab: math.exp(lp - peak) for lab, lp in finite.items()}
    total = sum(weights.values())
    return [weights.get(lab, 0.0) / total for lab in scheme_labels]


def ten_is_split(tokens: list[tuple[str, dict[str, float]]] | None) -> bool:
    """True when label 10 was read from "1" + "0" (:func:`label_logprobs`): no one-token "10" offered."""
    for tok, alts in tokens or []:
        if _as_int(tok) is not None:
            return "10" not in alts and tok.strip() != "10"
    return False
