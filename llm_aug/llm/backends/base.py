"""Small base class for backends: per-request fan-out, result checks, lifecycle."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Sequence

from llm_aug.llm.types import ChatRequest, Generation, MalformedResponse


class BaseBackend:
    """Implements :class:`llm_aug.llm.types.Backend` on top of :meth:`generate_one`.

    Subclasses that batch natively (an offline engine) override :meth:`generate` and
    raise ``batch_size`` so the runner hands them many requests per call.
    """

    name: ClassVar[str] = "base"
    batch_size: int = 1

    def __init__(self, model: str) -> None:
        self.model = model

    async def generate(self, batch: Sequence[ChatRequest]) -> list[list[Generation]]:
        """Generate every request of ``batch`` concurrently; results in input order."""
        if len(batch) == 1:  # the common case on HTTP backends: skip gather's task overhead
            return [check_generations(batch[0], await self.generate_one(batch[0]))]
        results = await asyncio.gather(*(self.generate_one(r) for r in batch))
        return [check_generations(r, g) for r, g in zip(batch, results)]

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        """Return ``request.params.n`` generations for one request."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Provenance for manifests (never secrets)."""
        return {"backend": self.name, "model": self.model}

    async def aclose(self) -> None:
        """Release connections or engines; the backend may be used again afterwards."""

    async def __aenter__(self) -> "BaseBackend":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def check_generations(request: ChatRequest, gens: list[Generation]) -> list[Generation]:
    """Raise :class:`MalformedResponse` unless there are exactly ``n`` samples, indexed 0..n-1."""
    if len(gens) != request.params.n:
        raise MalformedResponse(
            f"request {request.id!r}: expected {request.params.n} samples, got {len(gens)}")
    return sorted(gens, key=lambda g: g.index)
