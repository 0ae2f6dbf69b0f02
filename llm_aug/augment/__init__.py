"""LLM-independent parts of augmentation: balance plans, filters, rule-based
augmenters, the augmentation report's data (diversity, samples) and corpus writing.

The LLM generation loop builds :class:`SynthRow` objects and hands them to
:func:`apply_filters`; :func:`write_corpus` writes what survives.
"""

from llm_aug.augment.corpus import CorpusFiles, write_corpus
from llm_aug.augment.filters import (
    FILTER_NAMES,
    FilterConfig,
    apply_filters,
    rejection_counts,
)
from llm_aug.augment.plan import Plan, build_plan, plan_balance
from llm_aug.augment.rows import PromptRef, SynthRow, synth_id
from llm_aug.augment.summary import diversity, pick_samples, report_data
from llm_aug.augment.traditional import Augmenter, back_translate

__all__ = [
    "FILTER_NAMES", "Augmenter", "CorpusFiles", "FilterConfig", "Plan", "PromptRef", "SynthRow",
    "apply_filters", "back_translate", "build_plan", "diversity", "pick_samples", "plan_balance",
    "rejection_counts", "report_data", "synth_id", "write_corpus",
]
