"""The span rule's thresholds swept on the candidate sets of ``bench/leakage.py``.

For every candidate it computes, once, the verdict of the other leakage rules (the span
rule switched off) and its longest verbatim run with each protected post (runs of at
least the smallest floor swept); each setting of (``span_min_chars``, ``span_chars``,
``span_share``, ``span_min_post``) is then a cheap re-evaluation. Imported by ``bench/leakage.py``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from llm_aug.augment.dedup import leakage_verdicts
from llm_aug.augment.filters import LeakageConfig
from llm_aug.augment.spans import SpanIndex
from llm_aug.augment.textsim import normalize_for_match
from llm_aug.data.io import Row

FLOORS = (8, 9, 10, 11, 12)
SPANS = (8, 12, 16, 20, 24)
SHARES = (0.3, 0.35, 0.4)
MIN_POSTS = (0, 16, 20, 24)
Setting = tuple[int, int, float, int]
SWEPT = ("30%-verbatim splices", "40%-verbatim splices", "50%-verbatim splices", "distinct real posts")


def span_off(config: LeakageConfig) -> LeakageConfig:
    """``config`` with the span rule disabled (no seed can be that long)."""
    return config.model_copy(update={"span_min_chars": 10**9})


class Precomputed:
    """Per candidate: leak by the other rules, and its runs >= min(FLOORS) per protected post."""

    def __init__(self, texts: Sequence[str], protected: Sequence[Row], config: LeakageConfig) -> None:
        norm = [normalize_for_match(r.text) for r in protected]
        self.lengths = [len(p) for p in norm]
        self.others = [reason is not None for _, reason in leakage_verdicts(texts, protected, span_off(config))]
        spans = SpanIndex(norm, min(FLOORS))
        self.runs = [spans.runs(normalize_for_match(t)) for t in texts]

    def rate(self, floor: int, span: int, share: float, min_post: int) -> float:
        """Share of the candidates rejected with these span thresholds."""
        def needed(length: int) -> float:
            return max(floor, min(span, math.ceil(share * length - 1e-9))) if length >= min_post else math.inf
        hits = sum(o or any(run >= needed(self.lengths[p]) for p, run in runs.items())
                   for o, runs in zip(self.others, self.runs))
        return hits / max(len(self.others), 1)


def settings(chosen: Setting, grid: bool) -> list[Setting]:
    """Every combination (``grid``), or one threshold at a time around ``chosen``."""
    if grid:
        return [(f, s, r, m) for f, s, r, m in itertools.product(FLOORS, SPANS, SHARES, MIN_POSTS)
                if s > f or r == SHARES[0]]  # span <= floor: every threshold is the floor, the share cannot matter
    floor, span, share, post = chosen
    one = ([(f, span, share, post) for f in FLOORS] + [(floor, s, share, post) for s in SPANS]
           + [(floor, span, r, post) for r in SHARES] + [(floor, span, share, m) for m in MIN_POSTS])
    return list(dict.fromkeys(one))


def sweep(sets: dict[str, list[str]], protected: Sequence[Row], config: LeakageConfig,
          grid: bool = False) -> list[dict]:
    """One row per setting: the rejection rate of each swept set, and with the span rule off."""
    pre = {name: Precomputed(sets[name], protected, config) for name in SWEPT if name in sets}
    rows = [{"setting": "span rule off", **{n: sum(p.others) / max(len(p.others), 1) for n, p in pre.items()}}]
    chosen = chosen_setting(config)
    for setting in settings(chosen, grid):
        rows.append({"setting": setting, **{n: p.rate(*setting) for n, p in pre.items()}})
    return rows


def chosen_setting(config: LeakageConfig) -> Setting:
    """The span thresholds of ``config``."""
    return config.span_min_chars, config.span_chars, config.span_share, config.span_min_post


def sweep_table(rows: list[dict], chosen: Setting) -> str:
    """The Markdown sweep table, the chosen setting marked."""
    names = [k for k in rows[0] if k != "setting"]
    out = ["| span_min_chars | span_chars | span_share | span_min_post | " + " | ".join(names) + " |",
           "|---:|---:|---:|---:|" + "---:|" * len(names)]
    for r in rows:
        s = r["setting"]
        cells = (["off", "", "", ""] if isinstance(s, str) else
                 [str(s[0]), str(s[1]), "—" if s[1] <= s[0] else f"{s[2]:.2f}", str(s[3])])
        if s == chosen:
            cells[0] += " (default)"
        out.append("| " + " | ".join(cells + [f"{r[n]:.1%}" for n in names]) + " |")
    return "\n".join(out)
