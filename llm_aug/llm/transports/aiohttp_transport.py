"""The default transport: aiohttp, one keep-alive session per event loop.

Proxies come from the environment (``HTTP_PROXY`` / ``HTTPS_PROXY``, ``NO_PROXY``, proxy
credentials in ``~/.netrc``), read once when the transport is built, as aiohttp's
``trust_env`` would read them on every request. Loopback hosts never go through a proxy.
TLS is verified against the system CAs plus ``SSL_CERT_FILE``. Redirects are not
followed (an API that redirects a POST is misconfigured). docs/runtime.md has the
benchmark and the reasons for these choices.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.payload import get_payload
from yarl import URL

from llm_aug.llm.privacy import is_loopback
from llm_aug.llm.transports.base import FormField, HTTPRequest, HTTPResponse
from llm_aug.llm.types import BackendError, ConnectionDropped, Timeout, Unreachable

logger = logging.getLogger(__name__)


@dataclass
class _Attempt:
    """One try at sending a request; ``reused`` once it went out on a pooled connection."""

    reused: bool = False


_attempt: ContextVar[_Attempt | None] = ContextVar("llm_aug_http_attempt", default=None)


class _Connector(aiohttp.TCPConnector):
    """A TCPConnector that tells the current :class:`_Attempt` whether it got a pooled connection.

    Cheaper than a TraceConfig's on_connection_reuseconn (about 0.03 ms of CPU per
    request, measured), which sends a signal at every step of every request.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handed_out: weakref.WeakSet[Any] = weakref.WeakSet()

    async def connect(self, req: Any, *args: Any, **kwargs: Any) -> Any:
        """A connection from the pool or a new one, as the base class; notes which."""
        conn = await super().connect(req, *args, **kwargs)
        attempt = _attempt.get()
        if attempt is not None:
            attempt.reused = conn.protocol in self._handed_out
        self._handed_out.add(conn.protocol)
        return conn


def env_proxy(url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy (and its credentials) the environment sets for ``url``, or (None, None).

    Loopback hosts get none whatever the environment says: a proxy cannot reach this
    machine's loopback, and would carry the posts off the machine.
    """
    if is_loopback(url.host):
        return None, None
    try:
        return get_env_proxy_for_url(url)  # honours NO_PROXY
    except LookupError:
        return None, None


class AiohttpTransport:
    """Requests to one origin (JSON POSTs above all) over at most ``max_connections``
    keep-alive connections.

    The runner may call ``asyncio.run`` several times with one backend; connections
    belong to one event loop, so a new loop gets a new session.
    """

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None,
                 timeout_s: float = 60.0, max_connections: int = 64) -> None:
        self.base_url = base_url.rstrip("/")
        origin = URL(self.base_url)
        self._host = origin.host or "localhost"
        self.timeout_s = timeout_s
        self._max = max_connections
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         **dict(headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # Built here rather than aiohttp's default context, which is made once at import:
        # an SSL_CERT_FILE set before this transport is built must count.
        self._ssl: ssl.SSLContext | bool = (ssl.create_default_context()
                                            if origin.scheme == "https" else True)
        self.proxy, self._proxy_auth = env_proxy(origin)
        self._urls: dict[str, URL] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    async def _rebind(self) -> None:
        """A session for the running loop; the previous one is closed if that is possible."""
        loop = asyncio.get_running_loop()
        stale, stale_loop = self._session, self._loop
        # Replaced before any await, so concurrent first requests share one session.
        self._session = aiohttp.ClientSession(
            connector=_Connector(limit=self._max, ssl=self._ssl),
            headers=self._headers, timeout=self._timeout,
            # The environment was read in __init__: trust_env would reread it (and
            # ~/.netrc) in a worker thread on every request.
            trust_env=False)
        self._slots = asyncio.Semaphore(self._max)
        self._loop = loop
        logger.debug("aiohttp session for %s on a new event loop", self.base_url)
        if stale is not None and stale_loop is not None:
            await _close_session(stale, stale_loop)

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        """POST ``body`` (JSON bytes) to ``path`` under the base URL; raise on network failure."""
        return await self._exchange("POST", self._url(path), body, None, None)

    async def request(self, req: HTTPRequest) -> HTTPResponse:
        """Send ``req`` (GET, or POST with a JSON body or multipart fields); as :meth:`post_json`."""
        headers = dict(req.headers) if req.headers else None
        return await self._exchange(req.method, self._url(req.path), req.body, req.multipart,
                                    headers)

    async def _exchange(self, method: str, url: URL, body: bytes | None,
                        form: Sequence[FormField] | None,
                        headers: dict[str, str] | None) -> HTTPResponse:
        if asyncio.get_running_loop() is not self._loop or self._session is None:
            await self._rebind()
        assert self._slots is not None
        # The slot is taken before the clock starts: time spent queueing behind
        # max_connections is not a server timeout.
        async with self._slots:
            # Each resend follows the loss of a pooled connection, and there are at most
            # max_connections of those; the last try is on a fresh one.
            for _ in range(self._max + 1):
                attempt = _Attempt()
                try:
                    return await self._send(method, url, body, form, headers, attempt)
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    if not (attempt.reused and _closed_before_reply(exc)):
                        raise self._error(exc) from exc
                    # A kept-alive connection the server had closed: the request did not
                    # get through, so it is safe to send again on another connection.
                    logger.debug("pooled connection closed by the server; resending")
            raise ConnectionDropped("every pooled connection was closed by the server")

    async def _send(self, method: str, url: URL, body: bytes | None,
                    form: Sequence[FormField] | None, headers: dict[str, str] | None,
                    attempt: _Attempt) -> HTTPResponse:
        assert self._session is not None
        data: Any = body
        if form is not None:  # built for each try: aiohttp consumes a multipart payload
            data = _multipart(form)
            headers = {**(headers or {}), "Content-Type": data.content_type}
        _attempt.set(attempt)  # read by _Connector.connect, in this same task
        async with self._session.request(method, url, data=data, headers=headers,
                                         proxy=self.proxy, proxy_auth=self._proxy_auth,
                                         allow_redirects=False) as response:
            data = await response.read()
            return HTTPResponse(response.status,
                                {k.lower(): v for k, v in response.headers.items()}, data)

    def _error(self, exc: BaseException) -> BackendError:
        """The runtime's typed error for an aiohttp or socket failure."""
        if isinstance(exc, asyncio.TimeoutError):
            return Timeout(f"no response within {self.timeout_s:g} s")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):  # retrying cannot fix trust
            cert_error = exc.certificate_error
            reason = getattr(cert_error, "verify_message", None) or getattr(
                cert_error, "reason", None) or cert_error
            return BackendError(f"TLS certificate of {self._host} not trusted ({reason}); "
                                "set SSL_CERT_FILE to a CA bundle that has it")
        if isinstance(exc, aiohttp.InvalidURL):
            return BackendError(f"invalid URL: {exc}")
        if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, aiohttp.ClientSSLError):
            return self._unreachable(exc)
        return ConnectionDropped(f"connection failed: {type(exc).__name__}: {exc}")

    def _unreachable(self, exc: aiohttp.ClientConnectorError) -> Unreachable:
        """No connection at all: refused, unknown host, no route (to the server or the proxy)."""
        proxy = self.proxy if isinstance(exc, aiohttp.ClientProxyConnectionError) else None
        via_proxy = proxy is not None
        target = f"the proxy {proxy.with_user(None)} for {self.base_url}" if proxy else self.base_url
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return Unreachable(f"cannot reach {target}: connection refused; "
                               f"is the {'proxy' if via_proxy else 'server'} running?")
        if isinstance(cause, socket.gaierror):
            return Unreachable(f"cannot reach {target}: host {exc.host!r} not found (DNS); "
                               f"check {'HTTP(S)_PROXY' if via_proxy else '--base-url'}")
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        return Unreachable(f"cannot reach {target}: {reason}")

    async def aclose(self) -> None:
        """Close pooled connections; the next request opens new ones."""
        session, loop = self._session, self._loop
        self._session, self._loop, self._slots = None, None, None
        if session is not None and loop is not None:
            await _close_session(session, loop)


def _multipart(fields: Sequence[FormField]) -> aiohttp.MultipartWriter:
    """A ``multipart/form-data`` body, part by part as :class:`aiohttp.FormData` builds it
    (always multipart, even without a file: FormData would send those url-encoded)."""
    writer = aiohttp.MultipartWriter("form-data")
    for f in fields:
        part = (get_payload(f.value, content_type=f.content_type) if f.content_type
                else get_payload(f.value))
        params = {"name": f.name} if f.filename is None else {"name": f.name, "filename": f.filename}
        part.set_content_disposition("form-data", **params)
        part.headers.popall("Content-Length", None)  # as FormData does
        writer.append_payload(part)
    return writer


def _closed_before_reply(exc: BaseException) -> bool:
    """The connection broke before a complete response (not a timeout, not a failed connect)."""
    return (isinstance(exc, aiohttp.ClientConnectionError)
            and not isinstance(exc, (asyncio.TimeoutError, aiohttp.ClientConnectorError)))


async def _close_session(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    if loop is asyncio.get_running_loop() or loop.is_closed():
        # On a closed loop aiohttp only forgets the connections: their sockets belong
        # to the dead loop and go with the garbage.
        await session.close()
    else:
        logger.debug("not closing a session that belongs to another running event loop")
