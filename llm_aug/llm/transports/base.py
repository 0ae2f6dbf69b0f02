"""The seam between HTTP callers (OpenAI-compatible backends, the batch client) and the
HTTP library that carries them.

A :class:`Transport` sends requests to paths under its base URL and answers with the raw
:class:`HTTPResponse`: it raises only for network failures (typed errors of
:mod:`llm_aug.llm.types`), never for HTTP status codes, and parses nothing. Status
mapping (:mod:`llm_aug.llm.http_errors`) and body parsing stay with the caller, so every
transport gives identical generations. ``post_json`` is the hot path of live calls;
``request`` carries anything else (GET, multipart uploads) through the same session,
proxy, TLS and redirect rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Protocol, Sequence, runtime_checkable

Method = Literal["GET", "POST"]


@dataclass
class HTTPResponse:
    """Status, lower-cased headers and raw body of one response."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class FormField:
    """One part of a ``multipart/form-data`` body; a file when it has a ``filename``."""

    name: str
    value: bytes | str
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class HTTPRequest:
    """One request to ``path`` under a transport's base URL.

    ``body`` is sent as JSON (``Content-Type: application/json``); ``multipart`` as
    ``multipart/form-data``; at most one of them, and neither with GET. ``headers`` are
    added to (or replace) the transport's own for this request only.
    """

    method: Method
    path: str
    body: bytes | None = None
    multipart: Sequence[FormField] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST"):
            raise ValueError(f"unsupported method {self.method!r}; known: GET, POST")
        if self.body is not None and self.multipart is not None:
            raise ValueError("a request has a JSON body or multipart fields, not both")
        if self.method == "GET" and (self.body is not None or self.multipart is not None):
            raise ValueError("a GET request has no body")


@runtime_checkable
class Transport(Protocol):
    """Sends requests to one origin; usable from successive event loops."""

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        """POST ``body`` (JSON bytes) to ``path`` under the base URL.

        Raises :class:`~llm_aug.llm.types.Timeout`, :class:`~llm_aug.llm.types.ConnectionDropped`
        or another :class:`~llm_aug.llm.types.BackendError` when no response arrives;
        HTTP error statuses come back as responses.
        """
        ...

    async def request(self, req: HTTPRequest) -> HTTPResponse:
        """Send ``req``; raises and answers as :meth:`post_json` does."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections; the transport may be used again afterwards."""
        ...
