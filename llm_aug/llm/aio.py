"""asyncio helpers of the LLM runtime (the runner's per-call timeout)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

T = TypeVar("T")


async def with_timeout(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await with a deadline; ``asyncio.timeout`` where available (cheaper than wait_for)."""
    if seconds is None:
        return await awaitable
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)
