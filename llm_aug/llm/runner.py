"""The one place for cross-cutting concerns of LLM calls.

:class:`Runner` takes :class:`~llm_aug.llm.types.ChatRequest` items with stable ids and a
backend, and handles bounded concurrency, rpm/tpm limits, retries with backoff
(honouring Retry-After), per-call timeouts, the SQLite request cache, resumable JSONL
results, token/cost accounting and the progress bar. A failure after the last retry
is recorded on its row (``error``) and the run goes on.

A run that cannot succeed stops at once instead (:class:`~llm_aug.llm.types.RunAborted`):
the server is unreachable, or rejects the key (401/403) or the model (404), on the first
requests, or :attr:`Runner.breaker_threshold` calls in a row fail so after a success.
Ctrl-C raises :class:`~llm_aug.llm.types.RunInterrupted`. Either way the rows finished
so far are in the results file, and a rerun resumes from them.

A runner is handed its dispatch when it is built: live (the default: the worker pool
below), or a :class:`~llm_aug.llm.run_state.Dispatch` such as batch mode's
(:func:`~llm_aug.llm.build.build_runner` with ``batch=``), which writes the requests left
after cache and results file as Batch API files instead, and the run stops with
:class:`~llm_aug.llm.batch.BatchDeferred`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from llm_aug.llm.aio import with_timeout
from llm_aug.llm.cache import RequestCache, request_hash
from llm_aug.llm.config import ModelPrice, RunnerConfig
from llm_aug.llm.privacy import install_log_filter, redact
from llm_aug.llm.ratelimit import RequestLimits
from llm_aug.llm.results_file import ResultsFile
from llm_aug.llm.run_state import Dispatch, Pending, RunState, Stop
from llm_aug.llm.types import (
    Backend,
    BackendError,
    ChatRequest,
    DryRunEstimate,
    Generation,
    RateLimited,
    RunInterrupted,
    RunSummary,
    Timeout,
    error_name,
    estimate_prompt_tokens,
)

__all__ = ["DryRunEstimate", "RunSummary", "Runner", "RunnerConfig"]

logger = install_log_filter(logging.getLogger(__name__))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


class Runner:
    """Runs chat requests through a backend; see the module docstring."""

    #: Run-stopping failures (unreachable, 401/403, 404) in a row, after a success, that
    #: stop the run; before any success the first one does.
    breaker_threshold = 10

    def __init__(self, backend: Backend, config: RunnerConfig | None = None, *,
                 dispatch: Dispatch | None = None) -> None:
        self.backend = backend
        self.config = config or RunnerConfig()
        self.dispatch = dispatch  # None: live
        self.namespace = f"{backend.name}:{backend.model}"
        self.price: ModelPrice | None = self.config.prices.get(backend.model)

    def run(self, requests: Iterable[ChatRequest],
            out_path: str | Path | None = None) -> RunSummary:
        """Synchronous :meth:`arun`; closes the backend's connections at the end.

        Ctrl-C raises :class:`~llm_aug.llm.types.RunInterrupted` (a KeyboardInterrupt)
        telling how many rows are saved in ``out_path``.
        """
        result: list[RunSummary] = []
        states: list[RunState] = []

        async def main() -> None:
            # Not returned from the task: on 3.11 asyncio.run's exit path can repr the
            # main task's result, which costs seconds with many rows.
            try:
                result.append(await self._arun(requests, out_path, states.append))
            finally:
                aclose = getattr(self.backend, "aclose", None)
                if aclose is not None:
                    await aclose()
        try:
            asyncio.run(main())
        except KeyboardInterrupt as exc:
            if states and not isinstance(exc, RunInterrupted):
                raise states[0].interrupted() from exc
            raise
        return result[0]

    async def arun(self, requests: Iterable[ChatRequest],
                   out_path: str | Path | None = None) -> RunSummary:
        """Answer every request; rows go to ``out_path`` (JSONL) as they finish, if given.

        Rerunning with the same ``out_path`` skips items already answered there; the
        file ends up in input order, as after an uninterrupted run. Raises
        :class:`~llm_aug.llm.types.RunAborted` when the run cannot succeed.
        """
        return await self._arun(requests, out_path, None)

    async def _arun(self, requests: Iterable[ChatRequest], out_path: str | Path | None,
                    on_state: Callable[[RunState], None] | None) -> RunSummary:
        started = time.perf_counter()
        items = _unique(requests)
        keys = {r.id: request_hash(self.namespace, r) for r in items}
        store = ResultsFile(out_path) if out_path is not None else None
        done = store.resume(keys, retry_failed=self.config.retry_failed) if store else {}
        cache = RequestCache(self.config.cache_path) if self.config.cache_path else None
        state = RunState(store, cache, len(items), len(done), backend=self.backend.name,
                         model=self.backend.model, price=self.price,
                         breaker_threshold=self.breaker_threshold, quiet=self.config.quiet)
        if on_state is not None:
            on_state(state)
        try:
            pending = state.take_cached_and_done(items, keys, done)
            if self.dispatch is not None and pending:  # e.g. batch mode: written out, then a stop
                raise await self.dispatch.defer(pending, self.backend, self.namespace,
                                                self.config.cache_path)
            await self._dispatch(pending, state)
        finally:
            state.close()
        if store is not None:
            store.finalize([r.id for r in items], state.rows)
        if state.stopped_by is not None:
            raise state.aborted() from state.stopped_by
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
            cost_usd_max=self.price.cost(prompt, completion) if self.price else None)

    async def _dispatch(self, pending: list[Pending], state: RunState) -> None:
        """Workers share the batches; when the breaker trips, the others are cancelled."""
        size = max(1, int(getattr(self.backend, "batch_size", 1)))
        batches = iter([pending[i:i + size] for i in range(0, len(pending), size)])
        limits = RequestLimits(self.config.rpm, self.config.tpm)
        tasks: list[asyncio.Task[None]] = []

        async def worker() -> None:
            for batch in batches:  # one shared iterator: each worker takes the next batch
                try:
                    await self._run_batch(batch, state, limits)
                except Stop as stop:
                    state.stopped_by = state.stopped_by or stop.cause
                    for task in tasks:
                        if task is not asyncio.current_task():
                            task.cancel()  # their items stay unanswered, for a rerun
                    return

        n_workers = min(self.config.concurrency, -(-len(pending) // size))
        tasks.extend(asyncio.create_task(worker()) for _ in range(n_workers))
        try:
            if tasks:
                await asyncio.wait(tasks)
        finally:  # also on our own cancellation (Ctrl-C): no worker outlives the run
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _run_batch(self, batch: list[Pending], state: RunState,
                         limits: RequestLimits) -> None:
        requests = [p.request for p in batch]
        try:
            results = await self._attempts(requests, state, limits)
        except Stop:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the rows; the run goes on
            name = error_name(exc)  # NotFound is still "BadRequest" in rows and summaries
            message = redact(f"{name}: {exc}")
            logger.warning("giving up on %d item(s) (first %r): %s", len(batch),
                           batch[0].request.id, message)
            for p in batch:
                state.finish(p, None, message, name)
            return
        for p, gens in zip(batch, results):
            state.finish(p, gens, None, None)

    async def _attempts(self, requests: list[ChatRequest], state: RunState,
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

    async def _call(self, requests: list[ChatRequest], state: RunState,
                    limits: RequestLimits) -> list[list[Generation]]:
        """One backend call; :class:`Stop` (never retried) when the breaker trips."""
        estimate = await limits.acquire(requests)
        state.requests_made += len(requests)
        try:
            results = await with_timeout(self.backend.generate(requests), self.config.timeout_s)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            limits.settle(estimate, 0)
            raise Timeout(f"no answer within {self.config.timeout_s:g} s") from exc
        except BaseException as exc:
            limits.settle(estimate, 0)
            if isinstance(exc, BackendError) and state.breaker.failure(exc):
                raise Stop(exc) from exc
            raise
        if len(results) != len(requests):  # a backend bug: not retried
            limits.settle(estimate, 0)
            raise BackendError(f"backend returned {len(results)} results for {len(requests)}")
        limits.settle(estimate, sum(_tokens(g) for g in results))
        state.breaker.success()
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
