"""Descriptive statistics of data files and overlap between splits (leakage check)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np

from llm_aug.data.io import Dataset
from llm_aug.data.normalize import normalize_for_match

# Texts that collide here count as the same text (duplicates, overlap between splits, the
# exact-copy check of protected posts): whitespace, punctuation and case removed.
overlap_key = normalize_for_match


def dataset_stats(data: Dataset) -> dict[str, Any]:
    """Counts per label, length distribution (characters) and duplicate texts."""
    lengths = np.array([len(t) for t in data.texts])
    keys = Counter(overlap_key(t) for t in data.texts)
    label_counts = Counter(data.labels)
    labels = data.scheme.labels if data.scheme else sorted(k for k in label_counts if k is not None)
    return {
        "file": str(data.path),
        "rows": len(data),
        "labels": {str(k): label_counts.get(k, 0) for k in labels},
        "unlabelled": label_counts.get(None, 0),
        "length": {
            "min": int(lengths.min()), "p25": float(np.percentile(lengths, 25)),
            "median": float(np.median(lengths)), "p75": float(np.percentile(lengths, 75)),
            "max": int(lengths.max()), "mean": round(float(lengths.mean()), 1),
        },
        "duplicate_rows": int(sum(c - 1 for c in keys.values() if c > 1)),
    }


def split_overlap(datasets: list[Dataset]) -> list[dict[str, Any]]:
    """For every pair of files, how many texts of the second also occur in the first."""
    keyed = [(str(d.path), {overlap_key(t) for t in d.texts}) for d in datasets]
    rows = []
    for (name_a, keys_a), (name_b, keys_b) in combinations(keyed, 2):
        shared = keys_a & keys_b
        rows.append({"a": name_a, "b": name_b, "shared_texts": len(shared)})
    return rows
