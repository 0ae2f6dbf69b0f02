"""Training sets filtered against the eval split before a TEST-split run.

With ``--eval-split test`` no post of the test split may train a step (or serve as an
LLM step's exemplar): every training set, the paper's augmented sets included (they
hold a few test posts), loses its rows that are the same text up to punctuation as an
eval post. Synthetic rows (those that are not posts of the task's original training
file) also go when they are near-copies of an eval post (:mod:`llm_aug.augment.nearcopy`,
the ``leakage`` filter's rules). Near-copies among the original file's real posts are
kept and reported, as ``llm-aug augment`` keeps them by default: on SOS-1K they are
distinct posts sharing a stock phrase (真想去死), and dropping them made the training set
depend on the test posts (issue 19: 27 of 799 real posts, -1.6 points on val with val
standing in for test). ``results.json`` records what was removed (``train_filter``) and
the report lists it per training set.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_aug.augment.heldout import HeldOutCopies, find_copies, without_copies
from llm_aug.data.io import Dataset
from llm_aug.data.stats import overlap_key

log = logging.getLogger(__name__)


def filter_split(eval_split: str) -> bool:
    """Whether training sets are filtered against the eval split (TEST runs only)."""
    return eval_split == "test"


def filter_train(train: Dataset, eval_data: Dataset, eval_split: str,
                 original: Dataset | None = None) -> tuple[Dataset, dict[str, Any]]:
    """``train`` without copies of ``eval_data`` posts, and what was removed.

    Exact copies always go; near-copies go unless the row is a post of ``original`` (the
    task's original training file), whose near-copies are only counted (``near_kept``).
    """
    copies = find_copies(train.rows, eval_data.rows)
    real = {overlap_key(r.text) for r in original.rows} if original is not None else set()
    kept_near = [c for c in copies.near if overlap_key(train.rows[c.index].text) in real]
    dropped = HeldOutCopies(copies.exact, [c for c in copies.near if c not in kept_near])
    kept = without_copies(train, dropped, drop_near=True)
    info = {"against": eval_split, "rows": len(train), "removed": len(train) - len(kept),
            "exact": len(dropped.exact), "near": len(dropped.near), "near_kept": len(kept_near),
            "examples": kept.meta["held_out_copies"]["examples"],
            "kept_examples": [{"id": c.row_id, "protected": c.protected_id, "reason": c.reason}
                              for c in kept_near[:5]]}
    if info["removed"] or kept_near:
        log.info("%s: removed %d of %d training rows copying %s posts (%d exact, %d near); "
                 "%d real posts near a %s post kept", train.path, info["removed"], len(train), eval_split,
                 info["exact"], info["near"], len(kept_near), eval_split)
    return kept, info
