"""Async token buckets for requests-per-minute and tokens-per-minute limits."""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from llm_aug.llm.types import ChatRequest, estimate_prompt_tokens


class TokenBucket:
    """Refills at ``per_minute / 60`` units per second, holding at most ``burst_s`` worth.

    A caller asking for more than the bucket holds waits for a full bucket and then
    takes the bucket into debt, so large requests still pass and later ones wait.
    Create it inside the event loop that uses it.
    """

    def __init__(self, per_minute: float, *, burst_s: float = 1.0) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()  # first come, first served

    def _refill(self) -> None:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units (capped at the capacity) are available, then take them."""
        async with self._lock:
            while True:
                self._refill()
                need = min(amount, self.capacity)
                if self._level >= need:
                    self._level -= amount
                    return
                await asyncio.sleep((need - self._level) / self.rate)

    def refund(self, amount: float) -> None:
        """Give back units taken on an over-estimate (negative: take more after the fact)."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class RequestLimits:
    """rpm and tpm buckets (either may be off) for batches of requests.

    Tokens are not known before the answer, so tpm takes an upper estimate (prompt
    estimate + ``max_tokens`` x ``n``) and :meth:`settle` gives back the difference.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    async def acquire(self, requests: Sequence[ChatRequest]) -> int:
        """Wait for room for ``requests``; return the token estimate taken."""
        estimate = 0
        if self.rpm is not None:
            await self.rpm.acquire(len(requests))
        if self.tpm is not None:
            estimate = sum(estimate_prompt_tokens(r.messages) + r.params.max_tokens * r.params.n
                           for r in requests)
            await self.tpm.acquire(estimate)
        return estimate

    def settle(self, estimate: int, actual: int) -> None:
        """Correct the tpm bucket once the actual token count is known (0 on failure)."""
        if self.tpm is not None:
            self.tpm.refund(estimate - actual)
