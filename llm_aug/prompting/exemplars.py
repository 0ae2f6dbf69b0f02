"""Few-shot exemplar selection from a training set, and fitting exemplars to a token budget.

Strategies (``k`` is the total number of exemplars unless ``per_class=True``, where it is
the number per label):

- ``random``: stratified: labels in a seeded random order, one exemplar per label in
  turn until ``k`` are chosen, so every label appears before any appears twice.
  Seeded per query (``seed`` and the query id), so different queries see different
  exemplars but a rerun sees the same ones.
- ``similar``: the ``k`` nearest by cosine of char 1-3-gram TF-IDF (or of ``embedder``
  vectors), whatever their labels.
- ``diverse``: the nearest exemplar of each label, labels ordered by that similarity,
  then the second nearest of each, ... so as many labels as possible are covered.

``similar`` and ``diverse`` ignore the seed (ties break by training order). The result
never holds the query itself: not its id, not its text (whitespace-normalised), and no
text twice. Exemplars are returned most relevant first; :func:`fit_to_budget` drops from
the end.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset, Row
from llm_aug.llm.types import estimate_tokens

if TYPE_CHECKING:  # numpy loads with the first similarity query: zero-shot runs never need it
    import numpy as np

logger = logging.getLogger(__name__)

STRATEGIES = ("random", "similar", "diverse")
Embedder = Callable[[Sequence[str]], Any]  # texts -> array of shape (n, dim)


def _norm(text: str) -> str:
    return " ".join(text.split())


class ExemplarSelector:
    """Fit once on a training set, then ``select`` exemplars for each query."""

    def __init__(self, k: int = 4, strategy: str = "similar", seed: int = 0, *,
                 per_class: bool = False, embedder: Embedder | None = None) -> None:
        if strategy not in STRATEGIES:
            raise UserError(f"unknown exemplar strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
        if k < 0:
            raise UserError(f"number of exemplars must be >= 0, not {k}")
        self.k, self.strategy, self.seed, self.per_class = k, strategy, seed, per_class
        self.embedder = embedder
        self._rows: list[Row] = []
        self._vectorizer: Any = None
        self._matrix: Any = None

    def fit(self, train: Dataset | Iterable[Row]) -> ExemplarSelector:
        """Keep the labelled rows (first of each repeated text) and index them."""
        rows = train.rows if isinstance(train, Dataset) else list(train)
        seen: set[str] = set()
        self._rows = []
        for row in rows:
            key = _norm(row.text)
            if row.label is not None and key not in seen:
                seen.add(key)
                self._rows.append(row)
        self._matrix = None  # vectors are built on first similarity query
        logger.debug("exemplar pool: %d labelled rows of %d", len(self._rows), len(rows))
        return self

    @property
    def rows(self) -> list[Row]:
        return list(self._rows)

    def select(self, query_text: str, query_id: str | None = None, *, k: int | None = None,
               strategy: str | None = None, seed: int | None = None) -> list[Row]:
        """Exemplars for one query (never the query itself); see the module docstring."""
        k = self.k if k is None else k
        strategy = strategy or self.strategy
        if strategy not in STRATEGIES:
            raise UserError(f"unknown exemplar strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
        query_key = _norm(query_text)
        allowed = [i for i, r in enumerate(self._rows)
                   if r.text and _norm(r.text) != query_key and (query_id is None or r.id != query_id)]
        if k == 0 or not allowed:
            return []
        if strategy == "random":
            rng = random.Random(f"{self.seed if seed is None else seed}|{query_id or query_key}")
            picked = self._random(allowed, k, rng)
        else:
            sims = self._similarities(query_text)
            ranked = sorted(allowed, key=lambda i: (-sims[i], i))
            picked = self._similar(ranked, k) if strategy == "similar" else self._diverse(ranked, k)
        return [self._rows[i] for i in picked]

    def _by_label(self, indices: list[int]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for i in indices:
            groups.setdefault(self._rows[i].label, []).append(i)  # type: ignore[arg-type]
        return groups

    def _random(self, allowed: list[int], k: int, rng: random.Random) -> list[int]:
        groups = self._by_label(allowed)
        for members in groups.values():
            rng.shuffle(members)
        labels = sorted(groups)
        rng.shuffle(labels)
        return self._round_robin(groups, labels, k)

    def _similar(self, ranked: list[int], k: int) -> list[int]:
        if not self.per_class:
            return ranked[:k]
        keep = {i for members in self._by_label(ranked).values() for i in members[:k]}
        return [i for i in ranked if i in keep]

    def _diverse(self, ranked: list[int], k: int) -> list[int]:
        groups = self._by_label(ranked)  # each group is nearest first
        rank = {i: pos for pos, i in enumerate(ranked)}
        labels = sorted(groups, key=lambda lab: rank[groups[lab][0]])
        return self._round_robin(groups, labels, k)

    def _round_robin(self, groups: dict[int, list[int]], labels: list[int], k: int) -> list[int]:
        """Take the r-th member of each label in turn: k in all, or k per label."""
        total = k * len(labels) if self.per_class else k
        picked: list[int] = []
        for r in range(max((len(g) for g in groups.values()), default=0)):
            for label in labels:
                if len(picked) < total and r < len(groups[label]) and (not self.per_class or r < k):
                    picked.append(groups[label][r])
        return picked

    def _similarities(self, query_text: str) -> np.ndarray:
        import numpy as np

        if self._matrix is None:
            self._matrix = self._embed([r.text for r in self._rows], fit=True)
        query = self._embed([query_text], fit=False)
        sims = self._matrix @ query.T
        return np.asarray(sims.todense() if hasattr(sims, "todense") else sims).ravel()

    def _embed(self, texts: list[str], fit: bool) -> Any:
        if self.embedder is not None:
            import numpy as np

            vectors = np.asarray(self.embedder(texts), dtype=float)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            return vectors / np.where(norms == 0, 1.0, norms)
        if fit:
            from sklearn.feature_extraction.text import (
                TfidfVectorizer,  # heavy import, only when used
            )

            self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
            return self._vectorizer.fit_transform(texts)
        return self._vectorizer.transform(texts)  # rows are L2-normalised, so dot = cosine


def select_exemplars(query_text: str, query_id: str | None, train: Dataset | Iterable[Row], k: int,
                     strategy: str = "similar", seed: int = 0, embedder: Embedder | None = None,
                     *, per_class: bool = False) -> list[Row]:
    """One-off selection; build an :class:`ExemplarSelector` once when selecting for many queries."""
    selector = ExemplarSelector(k, strategy, seed, per_class=per_class, embedder=embedder)
    return selector.fit(train).select(query_text, query_id)


class BudgetFit(NamedTuple):
    """Exemplars kept, how many were dropped, the prompt's token count and whether it fits."""

    exemplars: list
    dropped: int
    tokens: int
    fits: bool


def prompt_tokens(rendered: Any, count_tokens: Callable[[str], int] = estimate_tokens) -> int:
    """Tokens of a rendered prompt: a string, or messages (Message or dict) plus 4 each for framing."""
    if isinstance(rendered, str):
        return count_tokens(rendered)
    contents = [m["content"] if isinstance(m, dict) else m.content for m in rendered]
    return sum(count_tokens(c) + 4 for c in contents)


def fit_to_budget(exemplars: Sequence[Any], render_fn: Callable[[list], Any], max_prompt_tokens: int,
                  count_tokens: Callable[[str], int] = estimate_tokens) -> BudgetFit:
    """Drop exemplars from the end (least relevant first) until ``render_fn(kept)`` fits.

    ``fits`` is False when even the prompt without exemplars is over the budget.
    """
    kept = list(exemplars)
    tokens = prompt_tokens(render_fn(kept), count_tokens)
    while kept and tokens > max_prompt_tokens:
        kept.pop()
        tokens = prompt_tokens(render_fn(kept), count_tokens)
    dropped = len(exemplars) - len(kept)
    if dropped:
        logger.debug("dropped %d exemplar(s) to fit %d prompt tokens", dropped, max_prompt_tokens)
    return BudgetFit(kept, dropped, tokens, tokens <= max_prompt_tokens)
