"""Training sets filtered against the eval split before a TEST-split run.

With ``--eval-split test`` no post of the test split, nor a near-copy of one, may train
a step (or serve as an LLM step's exemplar): every training set, the paper's augmented
sets included (they hold a few test posts), loses its rows that are the same text up to
punctuation as an eval post or a near-copy of one (:mod:`llm_aug.augment.nearcopy`,
default thresholds, the ``leakage`` filter's). ``results.json`` records what was removed
(``train_filter``) and the report lists it per training set.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_aug.augment.heldout import find_copies, without_copies
from llm_aug.data.io import Dataset

log = logging.getLogger(__name__)


def filter_split(eval_split: str) -> bool:
    """Whether training sets are filtered against the eval split (TEST runs only)."""
    return eval_split == "test"


def filter_train(train: Dataset, eval_data: Dataset, eval_split: str) -> tuple[Dataset, dict[str, Any]]:
    """``train`` without exact and near-copies of ``eval_data`` posts, and what was removed."""
    copies = find_copies(train.rows, eval_data.rows)
    kept = without_copies(train, copies, drop_near=True)
    info = {"against": eval_split, "rows": len(train), "removed": len(train) - len(kept),
            "exact": len(copies.exact), "near": len(copies.near),
            "examples": kept.meta["held_out_copies"]["examples"]}
    if info["removed"]:
        log.info("%s: removed %d of %d training rows copying %s posts (%d exact, %d near)", train.path,
                 info["removed"], len(train), eval_split, info["exact"], info["near"])
    return kept, info
