"""The ``openai`` SDK as a transport (``client="sdk"``).

The SDK sends the request (its auth header, TLS, proxy handling, on httpx); the body is
our JSON and the raw response comes back, so both transports give identical
generations. SDK retries are off: the runner retries. Redirects are not followed (as with
the aiohttp transport: the backend refuses a 3xx). Loopback hosts never go through
an environment proxy (see :func:`~llm_aug.llm.transports.aiohttp_transport.env_proxy`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from typing import Any, Awaitable, Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

from llm_aug.llm.privacy import is_loopback, redact
from llm_aug.llm.transports.base import FormField, HTTPRequest, HTTPResponse
from llm_aug.llm.types import BackendError, ConnectionDropped, Timeout

logger = logging.getLogger(__name__)


def _http_library() -> Any:
    """The httpx-like module the installed SDK sends through (httpx2 for openai >= 3)."""
    import openai

    # Asked of the SDK rather than guessed from what is installed: with both httpx and
    # httpx2 present, only the SDK's own library's Response is accepted as cast_to.
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        if cls.__name__ == "AsyncClient":
            return importlib.import_module(cls.__module__.split(".")[0])
    import httpx
    return httpx


class SDKTransport:
    """Sends requests with ``openai.AsyncOpenAI`` (one client per event loop)."""

    def __init__(self, base_url: str, *, api_key: SecretStr | None = None,
                 headers: Mapping[str, str] | None = None, timeout_s: float = 60.0,
                 max_connections: int = 64) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._key, self._headers, self._max = api_key, dict(headers or {}), max_connections
        self._client: Any = None
        self._response_type: Any = None  # the SDK's HTTP library's Response class
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_client(self) -> Any:
        import openai

        loop = asyncio.get_running_loop()
        if self._client is None or loop is not self._loop:
            hx = _http_library()
            self._response_type = hx.Response
            limits = hx.Limits(max_connections=self._max, max_keepalive_connections=self._max)
            host = urlsplit(self.base_url).hostname
            # A None mount = no proxy for that host, whatever HTTP(S)_PROXY says.
            bracketed = f"[{host}]" if host and ":" in host else host  # IPv6 literal
            mounts = {f"all://{bracketed}": None} if is_loopback(host) else None
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, timeout=self.timeout_s, max_retries=0,
                # The SDK insists on a key; local servers ignore it.
                api_key=self._key.get_secret_value() if self._key else "EMPTY",
                default_headers=self._headers,
                # The SDK's client follows redirects; a redirect could carry the posts to a
                # host the privacy check never saw, so the 3xx comes back to the backend.
                http_client=openai.DefaultAsyncHttpxClient(limits=limits, mounts=mounts,
                                                           follow_redirects=False))
            self._loop = loop
            logger.debug("openai SDK client for %s on a new event loop", self.base_url)
        return self._client

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        """POST ``body`` (JSON bytes) to ``path`` under the base URL; raise on network failure."""
        client = self._get_client()
        # Parsed back to an object: every SDK version takes JSON bodies that way.
        return await self._answer(client.post(path, cast_to=self._response_type,
                                              body=json.loads(body)))

    async def request(self, req: HTTPRequest) -> HTTPResponse:
        """Send ``req`` with the SDK's generic ``get`` / ``post`` (multipart as its ``files=``)."""
        client = self._get_client()
        headers = dict(req.headers)
        if req.method == "GET":
            return await self._answer(client.get(req.path, cast_to=self._response_type,
                                                 options={"headers": headers}))
        files = None
        body: Any = json.loads(req.body) if req.body is not None else None
        if req.multipart is not None:
            # As the SDK's own files.create: plain fields in the body, files as (name, bytes,
            # type), and a bare multipart Content-Type for httpx to add the boundary to.
            body = {f.name: _text(f.value) for f in req.multipart if f.filename is None}
            files = [(f.name, _file(f)) for f in req.multipart if f.filename is not None]
            headers = {**headers, "Content-Type": "multipart/form-data"}
        return await self._answer(client.post(req.path, cast_to=self._response_type, body=body,
                                              files=files, options={"headers": headers}))

    async def _answer(self, call: Awaitable[Any]) -> HTTPResponse:
        """The raw response of an SDK call, error statuses included; typed network errors."""
        import openai

        try:
            raw = await call
        except openai.APIStatusError as exc:
            raw = exc.response
        except openai.APITimeoutError as exc:
            raise Timeout(f"no response within {self.timeout_s:g} s (sdk)") from exc
        except openai.APIConnectionError as exc:
            raise ConnectionDropped(f"connection failed (sdk): {redact(str(exc))}") from exc
        except openai.OpenAIError as exc:
            raise BackendError(f"sdk error: {redact(str(exc))}") from exc
        return HTTPResponse(raw.status_code, {str(k).lower(): str(v)
                                              for k, v in raw.headers.items()}, raw.content)

    async def aclose(self) -> None:
        """Close the SDK client's connections; the next request makes a new client."""
        if self._client is not None:
            try:
                await self._client.close()
            except RuntimeError:
                pass  # created on an event loop that has since closed
            self._client = None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _file(f: FormField) -> tuple[Any, ...]:
    data = f.value.encode("utf-8") if isinstance(f.value, str) else f.value
    return (f.filename, data) if f.content_type is None else (f.filename, data, f.content_type)
