"""Filters that decide which synthetic posts enter the training corpus.

Synthetic posts only help if what reaches training is on-label, post-like, new and
free of held-out text, so the filters are the product. They run in this fixed order, cheap checks first, each on the survivors of the
previous one (so a row is charged to the first filter that rejects it):

1. ``length``          outside the real training posts' length range (percentiles)
2. ``language``        too few CJK letters (English or mixed chat output)
3. ``boilerplate``     chat/JSON residue: role names, "作为AI", ``"label":``, list numbering
4. ``loop``            a looping phrase (an n-gram repeated too often, or low zlib ratio)
5. ``counselling``     advice to a reader ("建议你", "寻求专业帮助", hotlines) instead of a post
6. ``leakage``         a near-copy of a protected (val/test) post: most of it, or half of the
                       protected post, reappears (:mod:`llm_aug.augment.nearcopy`); stricter
                       than near-dup, since such text must never train
7. ``exact_dup``       same normalised text as a training post or an earlier synthetic row
8. ``exemplar_copy``   too similar to one of its own prompt's exemplars
9. ``near_dup_train``  char 3-gram Jaccard >= threshold with any training post
10. ``near_dup_synth`` same with an earlier kept synthetic row (the first of a cluster stays)
11. ``label``          a relabel hook disagrees with the target level by more than a tolerance

Every filter that looks at a row writes its score to ``row.scores[name]``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llm_aug.augment import dedup as D
from llm_aug.augment import heuristics as H
from llm_aug.augment.dedup import Verdict
from llm_aug.augment.nearcopy import NearCopyRules
from llm_aug.augment.rows import SynthRow
from llm_aug.data.io import Dataset

log = logging.getLogger(__name__)

Relabel = Callable[[list[str]], list["int | None"]]


class FilterToggle(BaseModel):
    """Settings every filter has: switch it off with ``enabled: false``."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class LengthConfig(FilterToggle):
    """Bounds default to percentiles of the training lengths (SOS-1K fine/train: 4..140 chars)."""

    percentiles: tuple[float, float] = (2.0, 98.0)
    min_chars: int | None = None  # overrides the lower percentile when set
    max_chars: int | None = None


class LanguageConfig(FilterToggle):
    """Real SOS-1K posts have >= 0.8 of their letters CJK."""

    min_cjk_ratio: float = Field(0.6, ge=0.0, le=1.0)


class BoilerplateConfig(FilterToggle):
    max_hits: int = 0


class LoopConfig(FilterToggle):
    """One real post of 999 repeats a 4-gram 20 times; three repeat one 4 times."""

    n: int = 4
    max_repeats: int = 4  # reject when an n-gram occurs more often than this
    min_compression: float = 0.35  # real posts >= 50 chars: >= 0.41
    compression_min_chars: int = 50


class CounsellingConfig(FilterToggle):
    """Real posts score at most 1 (see :data:`heuristics.COUNSELLING_PATTERNS`)."""

    threshold: float = 3.0


class LeakageConfig(FilterToggle, NearCopyRules):
    """Near-copy thresholds: :class:`~llm_aug.augment.nearcopy.NearCopyRules` (``bench/leakage.py``)."""


class ExemplarConfig(FilterToggle):
    jaccard: float = 0.5
    containment: float = 0.8
    containment_min_shingles: int = 10


class NearDupConfig(FilterToggle):
    jaccard: float = 0.7


class LabelConfig(FilterToggle):
    """``tolerance`` None: 1 for an ordinal scheme with > 2 levels, else 0."""

    tolerance: int | None = None


class FilterConfig(BaseModel):
    """All filters' settings; ``shingle_n`` is the char n-gram size for similarities."""

    model_config = ConfigDict(extra="forbid")
    shingle_n: int = 3
    length: LengthConfig = LengthConfig()
    language: LanguageConfig = LanguageConfig()
    boilerplate: BoilerplateConfig = BoilerplateConfig()
    loop: LoopConfig = LoopConfig()
    counselling: CounsellingConfig = CounsellingConfig()
    leakage: LeakageConfig = LeakageConfig()
    exact_dup: FilterToggle = FilterToggle()
    exemplar_copy: ExemplarConfig = ExemplarConfig()
    near_dup_train: NearDupConfig = NearDupConfig()
    near_dup_synth: NearDupConfig = NearDupConfig()
    label: LabelConfig = LabelConfig()


class _Ctx:
    """What the filters need besides the rows; built once per :func:`apply_filters` call."""

    def __init__(self, config: FilterConfig, train: Dataset, protect: Sequence[Dataset],
                 relabel: Relabel | None) -> None:
        self.config, self.train, self.relabel = config, train, relabel
        self.protect_rows = [r for ds in protect for r in ds.rows]
        self.train_text = {r.id: r.text for r in train.rows}


def length_bounds(train: Dataset, cfg: LengthConfig) -> tuple[int, int]:
    """(min, max) characters allowed: explicit values or percentiles of ``train``."""
    lengths = np.array([len(t) for t in train.texts])
    lo = cfg.min_chars if cfg.min_chars is not None else int(np.floor(np.percentile(lengths, cfg.percentiles[0])))
    hi = cfg.max_chars if cfg.max_chars is not None else int(np.ceil(np.percentile(lengths, cfg.percentiles[1])))
    return lo, hi


def _length(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    lo, hi = length_bounds(ctx.train, ctx.config.length)
    return [(len(r.text), None if lo <= len(r.text) <= hi else f"{len(r.text)} chars outside {lo}..{hi}")
            for r in rows]


def _language(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    floor = ctx.config.language.min_cjk_ratio
    out = []
    for r in rows:
        ratio = H.cjk_ratio(r.text)
        out.append((ratio, None if ratio >= floor else f"CJK share {ratio:.2f} < {floor}"))
    return out


def _boilerplate(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    out = []
    for r in rows:
        hits = H.boilerplate_hits(r.text)
        bad = len(hits) > ctx.config.boilerplate.max_hits
        out.append((len(hits), f"matches {hits[:3]}" if bad else None))
    return out


def _loop(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    cfg, out = ctx.config.loop, []
    for r in rows:
        count, gram = H.max_ngram_repeats(r.text, cfg.n)
        ratio = H.compression_ratio(r.text)
        reason = None
        if count > cfg.max_repeats:
            reason = f"{gram!r} repeated {count} times"
        elif len(r.text) >= cfg.compression_min_chars and ratio < cfg.min_compression:
            reason = f"compression ratio {ratio:.2f} < {cfg.min_compression}"
        out.append((count, reason))
    return out


def _counselling(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    limit = ctx.config.counselling.threshold
    return [(s, f"advice score {s:g} >= {limit:g}" if s >= limit else None)
            for s in (H.counselling_score(r.text) for r in rows)]


def _leakage(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    if not ctx.protect_rows:
        log.warning("leakage filter: no protected data given; nothing to check against")
        return [(0.0, None) for _ in rows]
    return D.leakage_verdicts([r.text for r in rows], ctx.protect_rows, ctx.config.leakage,
                              ctx.config.shingle_n)


def _exact_dup(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return D.exact_dup_verdicts([(r.id, r.text) for r in rows], ctx.train.rows)


def _exemplar_copy(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    cfg = ctx.config.exemplar_copy
    return D.exemplar_verdicts([(r.text, r.exemplar_ids) for r in rows], ctx.train_text, cfg.jaccard,
                               cfg.containment, cfg.containment_min_shingles, ctx.config.shingle_n)


def _near_dup_train(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return D.near_dup_verdicts([r.text for r in rows], ctx.train.rows,
                               ctx.config.near_dup_train.jaccard, ctx.config.shingle_n)


def _near_dup_synth(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return D.self_dup_verdicts([(r.id, r.text) for r in rows], ctx.config.near_dup_synth.jaccard,
                               ctx.config.shingle_n)


def label_tolerance(train: Dataset, cfg: LabelConfig) -> int:
    """The allowed |predicted - target| distance (see :class:`LabelConfig`)."""
    if cfg.tolerance is not None:
        return cfg.tolerance
    scheme = train.scheme
    if scheme is not None:
        return 1 if scheme.ordinal and len(scheme.labels) > 2 else 0
    return 1 if len(set(train.labels)) > 2 else 0


def _label(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    tol = label_tolerance(ctx.train, ctx.config.label)
    preds = list(ctx.relabel([r.text for r in rows]))  # type: ignore[misc]
    if len(preds) != len(rows):
        raise ValueError(f"relabel returned {len(preds)} labels for {len(rows)} texts")
    out: list[Verdict] = []
    for r, p in zip(rows, preds):
        if p is None:
            out.append((-1.0, "relabel gave no label"))
            continue
        gap = abs(int(p) - r.label)
        out.append((float(p), f"relabelled {p}, target {r.label} (tolerance {tol})" if gap > tol else None))
    return out


FILTER_ORDER: tuple[tuple[str, Callable[[list[SynthRow], _Ctx], list[Verdict]]], ...] = (
    ("length", _length), ("language", _language), ("boilerplate", _boilerplate), ("loop", _loop),
    ("counselling", _counselling), ("leakage", _leakage), ("exact_dup", _exact_dup),
    ("exemplar_copy", _exemplar_copy), ("near_dup_train", _near_dup_train),
    ("near_dup_synth", _near_dup_synth), ("label", _label),
)
FILTER_NAMES: tuple[str, ...] = tuple(name for name, _ in FILTER_ORDER)


def apply_filters(rows: Sequence[SynthRow], config: FilterConfig | None, train: Dataset,
                  protect: Sequence[Dataset] = (), relabel: Relabel | None = None,
                  ) -> tuple[list[SynthRow], list[SynthRow]]:
    """Run the enabled filters in :data:`FILTER_ORDER`; return (kept, rejected) copies.

    Input rows are not modified. Rejected rows carry ``rejected_by`` and
    ``reject_reason``; :func:`rejection_counts` tallies them per filter.
    The ``label`` filter's score is the predicted label (-1 when there was none).
    """
    config = config or FilterConfig()
    ctx = _Ctx(config, train, protect, relabel)
    # Shallow copies with their own scores dict: filters only write scores and verdicts.
    alive = [r.model_copy(update={"scores": dict(r.scores)}) for r in rows]
    rejected: list[SynthRow] = []
    for name, fn in FILTER_ORDER:
        if not getattr(config, name).enabled or not alive:
            continue
        if name == "label" and relabel is None:
            log.info("label filter skipped: no relabel function given")
            continue
        survivors = []
        for row, (score, reason) in zip(alive, fn(alive, ctx)):
            row.scores[name] = round(float(score), 4)
            if reason is None:
                survivors.append(row)
            else:
                row.rejected_by, row.reject_reason = name, f"{name}: {reason}"
                rejected.append(row)
        log.info("filter %s: rejected %d of %d", name, len(alive) - len(survivors), len(alive))
        alive = survivors
    return alive, rejected


def rejection_counts(rejected: Sequence[SynthRow]) -> dict[str, int]:
    """Rejected rows per filter, in pipeline order (every filter listed, zeros included)."""
    counts = Counter(r.rejected_by for r in rejected)
    return {name: counts.get(name, 0) for name in FILTER_NAMES}
