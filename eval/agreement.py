"""Agreement between two raters on the same items: percent agreement and Cohen's kappa.

Labels may be any hashable values (a level, ``"reject"``); they are compared as strings
so mixed kinds sort. Undefined values are ``None``, never NaN: kappa needs at least two
items and more than one category between the two raters (with one category only the
chance agreement is 1 and kappa is 0/0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Share of items (0-100) on which ``a`` and ``b`` agree; None for no items."""
    _same_length(a, b)
    if not a:
        return None
    return 100.0 * sum(x == y for x, y in zip(a, b)) / len(a)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters (``sklearn.metrics.cohen_kappa_score``); None where undefined."""
    from sklearn.metrics import cohen_kappa_score  # lazy: sklearn

    _same_length(a, b)
    sa, sb = [str(x) for x in a], [str(y) for y in b]
    if len(sa) < 2 or len(set(sa) | set(sb)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(sa, sb))
    return None if math.isnan(kappa) else kappa


def _same_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> None:
    if len(a) != len(b):
        raise ValueError(f"raters rated different numbers of items: {len(a)} and {len(b)}")
