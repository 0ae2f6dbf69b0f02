"""What embedding a set of posts will cost, stated before it starts.

Embedding is the slow, one-time step of the frozen-encoder methods (``stack``,
``e5-lr``, ...): on 2 cores the e5 engine does tens of posts per second, so 100,000
posts take about an hour. The rate comes from a short timed probe on the posts
themselves (the probe's vectors are kept: no work is wasted), and only posts missing
from the on-disk cache count.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Posts timed to measure the rate (after one warm-up post that pays for loading the model).
PROBE_POSTS = 32
#: A statement estimated this long or longer is logged as a warning, so it shows at the
#: default verbosity and under ``--quiet``; shorter ones are info (``-v``).
NOTICE_SECONDS = 30.0
_clock = time.perf_counter  # tests swap in a fake clock


@dataclass
class EmbedCost:
    """Posts an embedder still has to embed and how long that should take."""

    embedder: str
    posts: int  # distinct posts not in the cache: the ones that will be embedded
    cached: int  # distinct posts already in the cache
    rate: float | None = None  # posts/s; None when nothing was measured
    basis: str = ""  # how ``rate`` was obtained

    @property
    def seconds(self) -> float | None:
        """Estimated wall time, or None without a rate (0 when nothing is left to embed)."""
        if self.posts == 0:
            return 0.0
        return self.posts / self.rate if self.rate else None

    def describe(self) -> str:
        """One line: posts, embedder, the estimate and where the rate came from."""
        head = f"embedding {self.posts:,} posts with {self.embedder}"
        cached = f"; {self.cached:,} more already cached" if self.cached else ""
        if self.posts == 0:
            return f"nothing to embed with {self.embedder}: all {self.cached:,} posts cached"
        if self.seconds is None:
            return f"{head} (rate not measured){cached}"
        return (f"{head}: about {format_duration(self.seconds)} at ~{self.rate:,.1f} posts/s "
                f"({self.basis}){cached}; vectors are cached, later runs on these posts skip this")

    def measure(self, embed: Callable[[list[str]], Any], texts: Sequence[str]) -> "EmbedCost":
        """Set ``rate`` from a timed probe of ``embed`` on the first of ``texts`` (vectors dropped)."""
        if texts:
            self.rate, n, _ = probe_rate(embed, texts)
            self.basis = f"measured on {n} probe posts"
        return self

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``seconds`` and the one-line ``estimate``."""
        return {**asdict(self), "seconds": None if self.seconds is None else round(self.seconds, 1),
                "estimate": self.describe()}


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2 h 30 min"``: rounded the way a person reads an estimate."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def probe_rate(embed: Callable[[list[str]], Any], texts: Sequence[str]) -> tuple[float, int, np.ndarray]:
    """Embed ``texts[:1 + PROBE_POSTS]``; the posts/s of all but the first, how many, and every vector.

    The first post is not timed: it pays for loading the model.
    """
    head = np.asarray(embed(list(texts[:1])), dtype=np.float32)
    probe = list(texts[1:1 + PROBE_POSTS])
    t0 = _clock()
    vecs = np.asarray(embed(probe), dtype=np.float32)
    elapsed = max(_clock() - t0, 1e-9)
    return len(probe) / elapsed, len(probe), np.concatenate([head, vecs], axis=0)


def announce(cost: EmbedCost) -> None:
    """Log ``cost`` before embedding: a warning when it is long, info otherwise."""
    long = cost.seconds is None or cost.seconds >= NOTICE_SECONDS
    log.log(logging.WARNING if long else logging.INFO, "%s", cost.describe())


def embed_announced(embed: Callable[[list[str]], Any], texts: Sequence[str], name: str,
                    cached: int = 0) -> np.ndarray:
    """``embed(texts)``, first stating its cost from a probe when there are enough posts to probe."""
    texts = list(texts)
    if len(texts) <= 2 * PROBE_POSTS:
        return np.asarray(embed(texts), dtype=np.float32)
    rate, n, head = probe_rate(embed, texts)
    announce(EmbedCost(name, len(texts), cached, rate, f"measured on {n} probe posts"))
    rest = np.asarray(embed(texts[len(head):]), dtype=np.float32)
    return np.concatenate([head, rest], axis=0)
