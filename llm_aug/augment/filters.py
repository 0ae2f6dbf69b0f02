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
                       protected post, reappears, or a long verbatim run of it does
                       (:mod:`llm_aug.augment.nearcopy`); stricter than near-dup, since
                       such text must never train
7. ``exact_dup``       same normalised text as a training post or an earlier synthetic row
8. ``exemplar_copy``   too similar to one of its own prompt's exemplars
9. ``near_dup_train``  char 3-gram Jaccard >= threshold with any training post
10. ``near_dup_synth`` same with an earlier kept synthetic row (the first of a cluster stays);
                       both through an exact prefix-filtering index (:mod:`~llm_aug.augment.simindex`)
11. ``label``          a relabel hook disagrees with the target level by more than a tolerance

Every filter that looks at a row writes its score to ``row.scores[name]``.
:class:`Filters` keeps the duplicate checks' state, so a run filters each batch of new
candidates once, against everything before it (:func:`apply_filters`: all at once).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from llm_aug.augment import dedup as D
from llm_aug.augment import heuristics as H
from llm_aug.augment.dedup import Verdict
from llm_aug.augment.filter_config import (
    BoilerplateConfig,
    CounsellingConfig,
    ExemplarConfig,
    FilterConfig,
    FilterToggle,
    LabelConfig,
    LanguageConfig,
    LeakageConfig,
    LengthConfig,
    LoopConfig,
    NearDupConfig,
)
from llm_aug.augment.nearcopy import NearCopyIndex
from llm_aug.augment.rows import SynthRow
from llm_aug.augment.simindex import GramCoder, document_frequencies
from llm_aug.data.io import Dataset

log = logging.getLogger(__name__)

Relabel = Callable[[list[str]], list["int | None"]]
__all__ = [  # the settings live in filter_config; importing them from here keeps working
    "FILTER_NAMES", "BoilerplateConfig", "CounsellingConfig", "ExemplarConfig", "FilterConfig", "FilterToggle",
    "Filters", "LabelConfig", "LanguageConfig", "LeakageConfig", "LengthConfig", "LoopConfig", "NearDupConfig",
    "Relabel", "apply_filters", "label_tolerance", "length_bounds", "rejection_counts", "rejection_counts_of",
]


class _Ctx:
    """What the filters need besides the rows, and what they remember between batches."""

    def __init__(self, config: FilterConfig, train: Dataset, protect: Sequence[Dataset],
                 relabel: Relabel | None) -> None:
        self.config, self.train, self.relabel = config, train, relabel
        n = config.shingle_n
        protect_rows = [r for ds in protect for r in ds.rows]
        self.leak_index = (NearCopyIndex([r.text for r in protect_rows], [r.id for r in protect_rows],
                                         config.leakage, n) if protect_rows else None)
        self.train_text = {r.id: r.text for r in train.rows}
        self.bounds = length_bounds(train, config.length) if config.length.enabled else (0, 0)
        self.exact = D.ExactDups(train.rows)
        # The indexes' n-gram order: rarest in the training posts first (see simindex).
        on = config.near_dup_train.enabled or config.near_dup_synth.enabled
        self.coder = GramCoder(n, document_frequencies(train.texts, n) if on else Counter())
        self.near_train = D.NearDups(config.near_dup_train.jaccard, self.coder, what="training post",
                                     reference=train.rows if config.near_dup_train.enabled else ())
        self.near_synth = D.NearDups(config.near_dup_synth.jaccard, self.coder, what="synthetic row", grow=True)


def length_bounds(train: Dataset, cfg: LengthConfig) -> tuple[int, int]:
    """(min, max) characters allowed: explicit values or percentiles of ``train``."""
    lengths = np.array([len(t) for t in train.texts])
    lo = cfg.min_chars if cfg.min_chars is not None else int(np.floor(np.percentile(lengths, cfg.percentiles[0])))
    hi = cfg.max_chars if cfg.max_chars is not None else int(np.ceil(np.percentile(lengths, cfg.percentiles[1])))
    return lo, hi


def _length(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    lo, hi = ctx.bounds
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
    if ctx.leak_index is None:
        log.warning("leakage filter: no protected data given; nothing to check against")
        return [(0.0, None) for _ in rows]
    return [(m.score, m.reason) for m in ctx.leak_index.check([r.text for r in rows])]


def _exact_dup(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return ctx.exact.verdicts([(r.id, r.text) for r in rows])


def _exemplar_copy(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    cfg = ctx.config.exemplar_copy
    return D.exemplar_verdicts([(r.text, r.exemplar_ids) for r in rows], ctx.train_text, cfg.jaccard,
                               cfg.containment, cfg.containment_min_shingles, ctx.config.shingle_n)


def _near_dup_train(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return ctx.near_train.verdicts([(r.id, r.text) for r in rows])


def _near_dup_synth(rows: list[SynthRow], ctx: _Ctx) -> list[Verdict]:
    return ctx.near_synth.verdicts([(r.id, r.text) for r in rows])


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


class Filters:
    """The filter pipeline with its memory: build once per run, then :meth:`run` batch after batch.

    A batch is checked against the training posts, the protected posts and every row of
    earlier batches that passed (exact and near duplicates), never re-checked later. Since
    no verdict depends on later rows, filtering rows in any split into consecutive batches
    keeps and rejects exactly what filtering them all at once does; each batch costs about
    the same however many came before (see :mod:`llm_aug.augment.simindex`).
    """

    def __init__(self, config: FilterConfig | None, train: Dataset, protect: Sequence[Dataset] = (),
                 relabel: Relabel | None = None) -> None:
        self.config = config or FilterConfig()
        self._ctx = _Ctx(self.config, train, protect, relabel)

    def run(self, rows: Sequence[SynthRow]) -> tuple[list[SynthRow], list[SynthRow]]:
        """Run the enabled filters in :data:`FILTER_ORDER` on the next rows; (kept, rejected) copies.

        Input rows are not modified. Rejected rows carry ``rejected_by`` and
        ``reject_reason``; :func:`rejection_counts` tallies them per filter.
        The ``label`` filter's score is the predicted label (-1 when there was none).
        """
        # Shallow copies with their own scores dict: filters only write scores and verdicts.
        alive = [r.model_copy(update={"scores": dict(r.scores)}) for r in rows]
        rejected: list[SynthRow] = []
        for name, fn in FILTER_ORDER:
            if not getattr(self.config, name).enabled or not alive:
                continue
            if name == "label" and self._ctx.relabel is None:
                log.debug("label filter skipped: no relabel function given")
                continue
            survivors = []
            for row, (score, reason) in zip(alive, fn(alive, self._ctx)):
                row.scores[name] = round(float(score), 4)
                if reason is None:
                    survivors.append(row)
                else:
                    row.rejected_by, row.reject_reason = name, f"{name}: {reason}"
                    rejected.append(row)
            log.debug("filter %s: rejected %d of %d", name, len(alive) - len(survivors), len(alive))
            alive = survivors
        self._ctx.coder.forget()
        return alive, rejected


def apply_filters(rows: Sequence[SynthRow], config: FilterConfig | None, train: Dataset,
                  protect: Sequence[Dataset] = (), relabel: Relabel | None = None,
                  ) -> tuple[list[SynthRow], list[SynthRow]]:
    """Filter ``rows`` all at once: :meth:`Filters.run` of a fresh :class:`Filters`."""
    return Filters(config, train, protect, relabel).run(rows)


def rejection_counts(rejected: Sequence[SynthRow]) -> dict[str, int]:
    """Rejected rows per filter, in pipeline order (every filter listed, zeros included)."""
    return rejection_counts_of(Counter(r.rejected_by for r in rejected))


def rejection_counts_of(counts: Mapping[str | None, int]) -> dict[str, int]:
    """:func:`rejection_counts` from counts by ``rejected_by`` already tallied."""
    return {name: counts.get(name, 0) for name in FILTER_NAMES}
