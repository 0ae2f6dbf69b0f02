"""Bookkeeping of one :class:`~llm_aug.llm.runner.Runner` run, its circuit breaker, its dispatch seam.

:class:`RunState` holds the rows, counters, request cache, results file and progress
bar of a run; it is given plain values (the backend's name and model, the price), not the
runner. :class:`Breaker` decides when a run cannot succeed and must stop: a server that
cannot be reached, or that rejects the key or the model, would fail every remaining
request after minutes of retries. :class:`Dispatch` is what a runner is handed to send its
pending requests somewhere other than the live backend (batch files).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Protocol, Sequence

from tqdm.auto import tqdm

from llm_aug.core.progress import is_quiet
from llm_aug.llm.cache import RequestCache
from llm_aug.llm.config import ModelPrice
from llm_aug.llm.privacy import install_log_filter, redact
from llm_aug.llm.results_file import ResultsFile
from llm_aug.llm.types import (
    AuthError,
    Backend,
    BackendError,
    ChatRequest,
    Generation,
    NotFound,
    Redirected,
    ResultRow,
    RunAborted,
    RunInterrupted,
    RunSummary,
    Unreachable,
)

logger = install_log_filter(logging.getLogger("llm_aug.llm.runner"))


def stops_the_run(exc: BaseException) -> bool:
    """Errors that every request to this server would get alike: unreachable, 3xx, 401/403, 404."""
    return isinstance(exc, (Unreachable, AuthError, Redirected, NotFound))


class Breaker:
    """Trips on a run-stopping error before any request succeeded, or ``threshold`` in a row.

    Only a successful call resets the count: other failures in between (a 500, a
    timeout) do not prove the server is back.
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.ok_seen = False
        self.streak = 0

    def success(self) -> None:
        """A call got its answer."""
        self.ok_seen, self.streak = True, 0

    def failure(self, exc: BaseException) -> bool:
        """Note a failed call; True when the run should stop now."""
        if not stops_the_run(exc):
            return False
        self.streak += 1
        return not self.ok_seen or self.streak >= self.threshold


class Stop(Exception):
    """Raised out of a call when the breaker tripped; carries the error that tripped it."""

    def __init__(self, cause: BackendError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Pending:
    """An item still to request, with whatever samples the cache already had."""

    __slots__ = ("request", "key", "cached")

    def __init__(self, request: ChatRequest, key: str, cached: list[Generation | None]) -> None:
        self.request, self.key, self.cached = request, key, cached


class Dispatch(Protocol):
    """Where a runner sends the requests its cache and results file did not answer, if not live.

    :class:`~llm_aug.llm.batch.export.BatchDispatch` writes them as batch files and returns
    the stop the runner raises; a runner without one sends them to its backend.
    """

    async def defer(self, pending: Sequence[Pending], backend: Backend, namespace: str,
                    cache_path: Path | None) -> BaseException:
        """Take ``pending`` away from the live path; the exception that ends the run."""
        ...


class RunState:
    """Rows, counters, cache, results file, progress bar and breaker of one run."""

    def __init__(self, store: ResultsFile | None, cache: RequestCache | None, total: int, n_done: int,
                 *, backend: str, model: str, price: ModelPrice | None = None,
                 breaker_threshold: int = 10, quiet: bool = False) -> None:
        self.store, self.cache = store, cache
        self.backend, self.model, self.price = backend, model, price
        self.rows: dict[str, ResultRow] = {}
        self.requests_made = self.retries = self.n_cached = self.n_resumed = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.errors: Counter[str] = Counter()
        self.breaker = Breaker(breaker_threshold)
        self.stopped_by: BackendError | None = None
        self.bar = tqdm(total=total, initial=n_done, disable=quiet or is_quiet(), unit="item",
                        leave=False, desc=f"{backend}:{model}", dynamic_ncols=True)

    def take_cached_and_done(self, items: Sequence[ChatRequest], keys: dict[str, str],
                             done: dict[str, ResultRow]) -> list[Pending]:
        """Settle resumed and fully cached items; return the ones to request."""
        pending = []
        self.rows.update(done)
        self.n_resumed = len(done)
        todo = [r for r in items if r.id not in done]
        hits = (self.cache.get_many([(r, keys[r.id]) for r in todo]) if self.cache is not None
                else [[None] * r.params.n for r in todo])
        for r, cached in zip(todo, hits):
            if all(g is not None for g in cached):
                self.n_cached += 1
                self._record(self._row(r.id, keys[r.id], generations=cached))
            else:
                pending.append(Pending(r, keys[r.id], cached))
        return pending

    def finish(self, p: Pending, gens: list[Generation] | None, error: str | None,
               error_type: str | None) -> None:
        """Record a finished item: its samples (cached ones kept) or its final error."""
        if gens is None:
            self.errors[error_type or "Error"] += 1
            self._record(self._row(p.request.id, p.key, error=error))
            return
        self.prompt_tokens += gens[0].prompt_tokens if gens else 0
        self.completion_tokens += sum(g.completion_tokens for g in gens)
        merged = [c if c is not None else g for c, g in zip(p.cached, gens)]
        if self.cache is not None:
            self.cache.put(p.key, [g for c, g in zip(p.cached, gens) if c is None])
        self._record(self._row(p.request.id, p.key, generations=merged))

    def _row(self, item_id: str, key: str, **fields: Any) -> ResultRow:
        return ResultRow(id=item_id, backend=self.backend, model=self.model, request_hash=key, **fields)

    def _record(self, row: ResultRow) -> None:
        self.rows[row.id] = row
        if self.store is not None:
            self.store.append(row)
        self.bar.update(1)

    def note_retry(self, exc: BaseException | None, attempt: int, wait: float) -> None:
        """Log a failed attempt that will be tried again."""
        self.retries += 1
        logger.info("attempt %d failed (%s: %s); retrying in %.2f s", attempt,
                    type(exc).__name__, redact(str(exc)), wait)

    @property
    def saved(self) -> int | None:
        """Rows in the results file (None without one)."""
        return len(self.rows) if self.store is not None else None

    def aborted(self) -> RunAborted:
        """The one-line error for a run the breaker stopped."""
        exc = self.stopped_by
        assert exc is not None
        if isinstance(exc, (Unreachable, Redirected)):
            reason = str(exc)
        elif isinstance(exc, AuthError):
            reason = f"the server rejected the credentials ({exc}); check the API key"
        else:
            reason = f"{exc}; check --model (the server's model id) and --base-url"
        if self.breaker.ok_seen:
            reason = f"stopped after {self.breaker.streak} failures in a row: {reason}"
        if self.saved:
            reason += f" ({self.saved} rows saved, rerun the same command to resume)"
        path = self.store.path if self.store is not None else None
        return RunAborted(redact(reason), cause=exc, saved=self.saved, path=path)

    def interrupted(self) -> RunInterrupted:
        """What Ctrl-C during this run raises: how many rows are saved, and where."""
        return RunInterrupted(self.saved, self.store.path if self.store is not None else None)

    def close(self) -> None:
        """Close the progress bar, commit the cache, close the results file."""
        self.bar.close()
        if self.cache is not None:
            self.cache.close()
        if self.store is not None:
            self.store.close()

    def summary(self, order: Sequence[str], wall_s: float) -> RunSummary:
        """The run's counts, usage and cost, with its rows in ``order``."""
        rows = [self.rows[i] for i in order]
        n_ok = sum(r.ok for r in rows)
        price = self.price
        return RunSummary(
            backend=self.backend, model=self.model, n_items=len(rows), n_ok=n_ok,
            n_failed=len(rows) - n_ok, n_resumed=self.n_resumed, n_cached=self.n_cached,
            requests_made=self.requests_made, retries=self.retries,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost_usd=price.cost(self.prompt_tokens, self.completion_tokens) if price else None,
            wall_s=round(wall_s, 3), errors=dict(self.errors), rows=rows)

