"""The seam between OpenAI-compatible backends and the HTTP library that carries them.

A :class:`Transport` POSTs JSON bytes to a path under its base URL and answers with
the raw :class:`HTTPResponse`: it raises only for network failures (typed errors of
:mod:`llm_aug.llm.types`), never for HTTP status codes, and parses nothing. Status
mapping and body parsing stay with the backend, so every transport gives identical
generations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass
class HTTPResponse:
    """Status, lower-cased headers and raw body of one response."""

    status: int
    headers: dict[str, str]
    body: bytes


@runtime_checkable
class Transport(Protocol):
    """Sends JSON POSTs to one origin; usable from successive event loops."""

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        """POST ``body`` (JSON bytes) to ``path`` under the base URL.

        Raises :class:`~llm_aug.llm.types.Timeout`, :class:`~llm_aug.llm.types.ConnectionDropped`
        or another :class:`~llm_aug.llm.types.BackendError` when no response arrives;
        HTTP error statuses come back as responses.
        """
        ...

    async def aclose(self) -> None:
        """Close pooled connections; the transport may be used again afterwards."""
        ...
