"""The one place for cross-cutting concerns of LLM calls.

:class:`Runner` takes :class:`~llm_aug.llm.types.ChatRequest` items with stable ids and a
backend, and handles bounded concurrency, rpm/tpm limits, retries with backoff
(honouring Retry-After), per-call timeouts, the SQLite request cache, resumable JSONL
results, token/cost accounting and the progress bar. A failure after the last retry
is recorded on its row (``error``) and the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
from tqdm.auto import tqdm

from llm_aug.core.progress import is_quiet
from llm_aug.llm.aio import with_timeout
from llm_aug.llm.cache import RequestCache, ResultsFile, request_hash
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.privacy import install_log_filter, redact
from llm_aug.llm.ratelimit import RequestLimits
from llm_aug.llm.types import (
    Backend, BackendError, ChatRequest, DryRunEstimate, Generation, RateLimited, ResultRow,
    RunSummary, Timeout, estimate_prompt_tokens,
)

__all__ = ["DryRunEstimate", "RunSummary", "Runner", "RunnerConfig"]

logger = install_log_filter(logging.getLogger(__name__))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


class Runner:
    """Runs chat requests through a backend; see the module docstring."""

    def __init__(self, backend: Backend, config: RunnerConfig | None = None) -> None:
        self.backend = backend
        self.config = config or RunnerConfig()
        self.namespace = f"{backend.name}:{backend.model}"
        self._price = self.config.prices.get(backend.model)

    def run(self, requests: Iterable[ChatRequest],
            out_path: str | Path | None = None) -> RunSummary:
        """Synchronous :meth:`arun`; closes the backend's connections at the end."""
        result: list[RunSummary] = []

        async def main() -> None:
            # Not returned from the task: on 3.11 asyncio.run's exit path can repr the
            # main task's result, which costs seconds with many rows.
            try:
                result.append(await self.arun(requests, out_path))
            finally:
                aclose = getattr(self.backend, "aclose", None)
                if aclose is not None:
                    await aclose()
        asyncio.run(main())
        return result[0]

    async def arun(self, requests: Iterable[ChatRequest],
                   out_path: str | Path | None = None) -> RunSummary:
        """Answer every request; rows go to ``out_path`` (JSONL) as they finish, if given.

        Rerunning with the same ``out_path`` skips items already answered there; the
        file ends up in input order, as after an uninterrupted run.
        """
        started = time.perf_counter()
        items = _unique(requests)
        keys = {r.id: request_hash(self.namespace, r) for r in items}
        store = ResultsFile(out_path) if out_path is not None else None
        done = store.resume(keys, retry_failed=self.config.retry_failed) if store else {}
        cache = RequestCache(self.config.cache_path) if self.config.cache_path else None
        state = _RunState(self, store, cache, len(items), len(done))
        try:
            pending = state.take_cached_and_done(items, keys, done)
            await self._dispatch(pending, state)
        finally:
            state.close()
        if store is not None:
            store.finalize([r.id for r in items], state.rows)
        return state.summary([r.id for r in items], time.perf_counter() - started)

    def dry_run(self, requests: Iterable[ChatRequest],
                out_path: str | Path | None = None) -> DryRunEstimate:
        """Count requests and estimate tokens and cost; the backend is not called."""
        items = _unique(requests)
        keys = {r.id: request_hash(self.namespace, r) for r in items}
        done = ResultsFile.peek(out_path, keys, self.config.retry_failed) if out_path else set()
        path = self.config.cache_path
        cache = RequestCache(path) if path is not None and Path(path).exists() else None
        todo = [r for r in items if r.id not in done]
        if cache is not None:
            hits = cache.get_many([(r, keys[r.id]) for r in todo])
            cache.close()
            todo = [r for r, h in zip(todo, hits) if not all(g is not None for g in h)]
        n_cached = len(items) - len(done) - len(todo)
        prompt = sum(estimate_prompt_tokens(r.messages) for r in todo)
        completion = sum(r.params.max_tokens * r.params.n for r in todo)
        return DryRunEstimate(
            n_items=len(items), n_resumed=len(done), n_cached=n_cached, n_requests=len(todo),
            prompt_tokens=prompt, completion_tokens_max=completion,
            cost_usd_max=self._price.cost(prompt, completion) if self._price else None)

    async def _dispatch(self, pending: list["_Pending"], state: "_RunState") -> None:
        size = max(1, int(getattr(self.backend, "batch_size", 1)))
        batches = iter([pending[i:i + size] for i in range(0, len(pending), size)])
        limits = RequestLimits(self.config.rpm, self.config.tpm)

        async def worker() -> None:
            for batch in batches:  # one shared iterator: each worker takes the next batch
                await self._run_batch(batch, state, limits)

        n_workers = min(self.config.concurrency, -(-len(pending) // size))
        await asyncio.gather(*(worker() for _ in range(n_workers)))

    async def _run_batch(self, batch: list["_Pending"], state: "_RunState",
                         limits: RequestLimits) -> None:
        requests = [p.request for p in batch]
        try:
            results = await self._attempts(requests, state, limits)
        except Exception as exc:  # noqa: BLE001 - recorded on the rows; the run goes on
            message = redact(f"{type(exc).__name__}: {exc}")
            logger.warning("giving up on %d item(s) (first %r): %s", len(batch),
                           batch[0].request.id, message)
            for p in batch:
                state.finish(p, None, message, type(exc).__name__)
            return
        for p, gens in zip(batch, results):
            state.finish(p, gens, None, None)

    async def _attempts(self, requests: list[ChatRequest], state: "_RunState",
                        limits: RequestLimits) -> list[list[Generation]]:
        """The first attempt directly; retries (if it failed retryably) driven by tenacity.

        Most calls succeed at once, and entering tenacity for every call cost more CPU
        than the rest of the runner's bookkeeping (see docs/runtime.md).
        """
        try:
            return await self._call(requests, state, limits)
        except Exception as exc:
            if not _retryable(exc) or self.config.max_retries == 0:
                raise
            delay = self._delay(exc, 1)
            state.note_retry(exc, 1, delay)
        await asyncio.sleep(delay)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_retries), retry=retry_if_exception(_retryable),
            wait=lambda rs: self._delay(rs.outcome.exception() if rs.outcome else None,
                                        rs.attempt_number + 1),
            before_sleep=lambda rs: state.note_retry(
                rs.outcome.exception() if rs.outcome else None, rs.attempt_number + 1,
                rs.next_action.sleep if rs.next_action else 0.0),
            reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self._call(requests, state, limits)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _call(self, requests: list[ChatRequest], state: "_RunState",
                    limits: RequestLimits) -> list[list[Generation]]:
        estimate = await limits.acquire(requests)
        state.requests_made += len(requests)
        try:
            results = await with_timeout(self.backend.generate(requests), self.config.timeout_s)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            limits.settle(estimate, 0)
            raise Timeout(f"no answer within {self.config.timeout_s:g} s") from exc
        except BaseException:
            limits.settle(estimate, 0)
            raise
        if len(results) != len(requests):  # a backend bug: not retried
            limits.settle(estimate, 0)
            raise BackendError(f"backend returned {len(results)} results for {len(requests)}")
        limits.settle(estimate, sum(_tokens(g) for g in results))
        return results

    def _delay(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds before the next try after ``attempt`` failed tries."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.config.max_retry_after_s) * 1.05
        # Exponential with jitter (written out: tenacity renamed its parameters across versions).
        cfg = self.config
        step = cfg.backoff_initial_s * 2 ** (attempt - 1)
        return min(cfg.backoff_max_s, step) + random.uniform(0, cfg.backoff_initial_s)


def _tokens(gens: Sequence[Generation]) -> int:
    return (gens[0].prompt_tokens if gens else 0) + sum(g.completion_tokens for g in gens)


def _unique(requests: Iterable[ChatRequest]) -> list[ChatRequest]:
    items = list(requests)
    seen: set[str] = set()
    dupes = {r.id for r in items if r.id in seen or seen.add(r.id)}  # type: ignore[func-returns-value]
    if dupes:
        raise ValueError(f"request ids must be unique; repeated: {sorted(dupes)[:5]}")
    return items


class _Pending:
    __slots__ = ("request", "key", "cached")

    def __init__(self, request: ChatRequest, key: str, cached: list[Generation | None]) -> None:
        self.request, self.key, self.cached = request, key, cached


class _RunState:
    """Rows, counters, cache, results file and progress bar of one run."""

    def __init__(self, runner: Runner, store: ResultsFile | None, cache: RequestCache | None,
                 total: int, n_done: int) -> None:
        self.runner, self.store, self.cache = runner, store, cache
        self.rows: dict[str, ResultRow] = {}
        self.requests_made = self.retries = self.n_cached = self.n_resumed = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.errors: Counter[str] = Counter()
        quiet = runner.config.quiet or _globally_quiet()
        self.bar = tqdm(total=total, initial=n_done, disable=quiet, unit="item", leave=False,
                        desc=runner.namespace, dynamic_ncols=True)

    def take_cached_and_done(self, items: Sequence[ChatRequest], keys: dict[str, str],
                             done: dict[str, ResultRow]) -> list[_Pending]:
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
                pending.append(_Pending(r, keys[r.id], cached))
        return pending

    def finish(self, p: _Pending, gens: list[Generation] | None, error: str | None,
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
        backend = self.runner.backend
        return ResultRow(id=item_id, backend=backend.name, model=backend.model,
                         request_hash=key, **fields)

    def _record(self, row: ResultRow) -> None:
        self.rows[row.id] = row
        if self.store is not None:
            self.store.append(row)
        self.bar.update(1)

    def note_retry(self, exc: BaseException | None, attempt: int, wait: float) -> None:
        self.retries += 1
        logger.info("attempt %d failed (%s: %s); retrying in %.2f s", attempt,
                    type(exc).__name__, redact(str(exc)), wait)

    def close(self) -> None:
        self.bar.close()
        if self.cache is not None:
            self.cache.close()
        if self.store is not None:
            self.store.close()

    def summary(self, order: Sequence[str], wall_s: float) -> RunSummary:
        rows = [self.rows[i] for i in order]
        n_ok = sum(r.ok for r in rows)
        backend, price = self.runner.backend, self.runner._price
        return RunSummary(
            backend=backend.name, model=backend.model, n_items=len(rows), n_ok=n_ok,
            n_failed=len(rows) - n_ok, n_resumed=self.n_resumed, n_cached=self.n_cached,
            requests_made=self.requests_made, retries=self.retries,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost_usd=price.cost(self.prompt_tokens, self.completion_tokens) if price else None,
            wall_s=round(wall_s, 3), errors=dict(self.errors), rows=rows)


def _globally_quiet() -> bool:
    return is_quiet()
