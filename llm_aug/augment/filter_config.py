"""Settings of the synthetic-post filters (:mod:`llm_aug.augment.filters`): one model per filter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_aug.augment.nearcopy import NearCopyRules


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

    @model_validator(mode="after")
    def _span_covers_an_ngram(self) -> FilterConfig:
        # The span rule scores the pairs that share an n-gram: a shorter run would go unseen.
        if self.leakage.span_min_chars < self.shingle_n:
            raise ValueError(f"leakage.span_min_chars ({self.leakage.span_min_chars}) must be at least "
                             f"shingle_n ({self.shingle_n})")
        return self
