"""Batching helpers for :mod:`llm_aug.classifiers.bert`: tokenise once, pad per batch, order batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

PADDING_MODES = ("dynamic", "max_length")

# How many batches' worth of rows are sorted together when bucketing by length: large
# enough that neighbours have similar lengths, small enough that batches stay shuffled.
BUCKET_BATCHES = 50


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text ([CLS] ... [SEP], truncated to ``max_length``), unpadded.

    Padding is left to :func:`collate` so each batch is only as wide as it needs to be.
    """
    enc = tokenizer(list(texts), truncation=True, max_length=max_length,
                    return_attention_mask=False, return_token_type_ids=False)
    return [list(ids) for ids in enc["input_ids"]]


def collate(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> dict[str, torch.Tensor]:
    """Stack token-id rows into ``input_ids`` / ``attention_mask`` tensors.

    ``width=None`` pads to the longest row of this batch (dynamic padding); an int pads
    every batch to that width (the fixed ``max_length`` layout, kept for comparison).
    """
    longest = max(len(r) for r in rows)
    width = longest if width is None else max(width, longest)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def train_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                  bucket: bool) -> list[np.ndarray]:
    """Row indices of each training batch for one epoch, shuffled with ``rng``.

    With ``bucket`` the shuffled rows are sorted by length inside chunks of
    ``BUCKET_BATCHES`` batches, then the batch order is shuffled again: rows of a batch
    have similar lengths, so dynamic padding wastes little, while the epoch stays random.
    """
    order = rng.permutation(len(lengths))
    if not bucket:
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    lens = np.asarray(lengths)
    chunk = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start: start + chunk]
        part = part[np.argsort(lens[part], kind="stable")]
        batches.extend(part[i: i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def predict_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Row indices in length order, ``batch_size`` at a time (callers restore input order)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i: i + batch_size]


def balanced_weights(y_ids: Sequence[int], n_classes: int) -> np.ndarray:
    """``n / (k * count)`` per class like scikit-learn's "balanced"; 1.0 for unseen classes."""
    counts = np.bincount(np.asarray(y_ids, dtype=int), minlength=n_classes).astype(float)
    seen = counts > 0
    weights = np.ones(n_classes)
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return weights
