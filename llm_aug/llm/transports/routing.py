"""Several replicas of one model behind one :class:`Transport`: least-loaded routing, failover.

Each request goes to the healthy endpoint with the fewest requests in flight (ties go
round-robin, so equal servers get equal shares and a slow one gets fewer). An endpoint
that fails at the connection level (refused, reset, DNS, timeout) or answers 5xx is
marked dead for a cool-down that doubles on each failed probe, and the same request is
sent at once to another endpoint: a dead replica is drained without losing rows and
without spending the runner's retries. After the cool-down one request probes it; a
success brings it back. A 429 rests only that endpoint (rate limits are per server)
for its Retry-After, and the request moves on. Only when no other endpoint is left does
the last error (or 429/5xx response) reach the backend and the runner, whose retries
and breaker then work as with one server. When every endpoint is resting, a request
still goes to the one due back soonest, so the runner sees a real error, not a made-up one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from llm_aug.llm.http_errors import retry_after_s
from llm_aug.llm.privacy import install_log_filter
from llm_aug.llm.transports.base import HTTPRequest, HTTPResponse, Transport
from llm_aug.llm.types import BackendError

Send = Callable[[Transport], Awaitable[HTTPResponse]]

logger = install_log_filter(logging.getLogger(__name__))


@dataclass
class Endpoint:
    """One replica: its transport and what the router knows about it."""

    url: str
    transport: Transport
    in_flight: int = 0
    failures: int = 0  # consecutive failures; > 0 means marked dead
    resting_until: float = 0.0  # clock time before which it gets no requests (if others can)
    probing: bool = False
    sent: int = 0
    warned: bool = False  # its death was logged at WARNING

    def ready(self, now: float) -> bool:
        """May take a request now (one probe at a time while it is marked dead)."""
        return now >= self.resting_until and not self.probing


class RoutingTransport:
    """A :class:`Transport` over several endpoints; see the module docstring."""

    def __init__(self, endpoints: Sequence[tuple[str, Transport]], *, cooldown_s: float = 1.0,
                 max_cooldown_s: float = 30.0, max_rest_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not endpoints:  # repeated URLs are refused by the config (OpenAIBackendConfig)
            raise ValueError("no endpoint to route to")
        self.endpoints = [Endpoint(url, transport) for url, transport in endpoints]
        self.cooldown_s, self.max_cooldown_s, self.max_rest_s = cooldown_s, max_cooldown_s, max_rest_s
        self._clock = clock
        self._turn = 0
        # Until some endpoint answers, deaths are not warned about: if all are down, the
        # runner's one-line error says so, and warnings before it would be noise.
        self._ok_seen = False

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        """Send to the least-loaded ready endpoint, then to the others while they fail."""
        return await self._route(lambda transport: transport.post_json(path, body))

    async def request(self, req: HTTPRequest) -> HTTPResponse:
        """Route ``req`` as :meth:`post_json` routes a POST (same health and failover).

        Requests that must reach one server together (a file upload and the batch made
        from it) need a plain transport: each routed request may go to another replica.
        """
        return await self._route(lambda transport: transport.request(req))

    async def _route(self, send: Send) -> HTTPResponse:
        tried: list[int] = []
        last: HTTPResponse | BackendError | None = None
        while (index := self._pick(tried)) is not None:
            tried.append(index)
            last = await self._send(self.endpoints[index], send)
            if isinstance(last, HTTPResponse) and not _moves_on(last.status):
                return last
        if isinstance(last, BackendError):
            tried_urls = [self.endpoints[i].url for i in tried]
            dead = [e.url for e in self.endpoints if e.failures and e.url not in tried_urls]
            raise _naming_all(last, dead + tried_urls)
        assert last is not None  # _pick always offers one endpoint to a first try
        return last

    def _pick(self, tried: list[int]) -> int | None:
        """The ready untried endpoint with fewest in flight (round-robin among equals).

        None when none is ready, except on a first try: then the one due back soonest.
        """
        now, n = self._clock(), len(self.endpoints)
        order = [(self._turn + k) % n for k in range(n)]
        ready = [i for i in order if i not in tried and self.endpoints[i].ready(now)]
        if ready:
            best = min(ready, key=lambda i: self.endpoints[i].in_flight)  # first of equals wins
            self._turn = best + 1
        elif not tried:
            best = min(order, key=lambda i: self.endpoints[i].resting_until)
        else:
            return None
        endpoint = self.endpoints[best]
        endpoint.probing = endpoint.failures > 0 and now >= endpoint.resting_until
        return best

    async def _send(self, endpoint: Endpoint, send: Send) -> HTTPResponse | BackendError:
        """One try on ``endpoint``: the response, or the retryable error it raised."""
        endpoint.in_flight += 1
        endpoint.sent += 1
        probing = endpoint.probing
        try:
            response = await send(endpoint.transport)
        except BackendError as exc:
            if not exc.retryable:  # e.g. an untrusted TLS certificate: a setup mistake
                raise
            self._failed(endpoint, f"{type(exc).__name__}: {exc}", probing)
            return exc
        finally:
            endpoint.in_flight -= 1
            if probing:
                endpoint.probing = False
        if response.status == 429:
            self._rest(endpoint, retry_after_s(response.headers))
        elif response.status >= 500:
            self._failed(endpoint, f"HTTP {response.status}", probing)
        else:
            self._succeeded(endpoint)
        return response

    def _failed(self, endpoint: Endpoint, reason: str, probing: bool) -> None:
        now = self._clock()
        if now < endpoint.resting_until and not probing:
            return  # already marked: requests that were in flight when it died
        endpoint.failures += 1
        wait = min(self.max_cooldown_s, self.cooldown_s * 2 ** (endpoint.failures - 1))
        endpoint.resting_until = now + wait
        if endpoint.failures == 1:
            endpoint.warned = self._ok_seen
            logger.log(logging.WARNING if self._ok_seen else logging.DEBUG,
                       "endpoint %s marked dead (%s); its requests go to the others, "
                       "probing again in %.1f s", endpoint.url, reason, wait)
        else:
            logger.info("endpoint %s still down (%s); next probe in %.1f s",
                        endpoint.url, reason, wait)

    def _succeeded(self, endpoint: Endpoint) -> None:
        if not self._ok_seen:
            self._ok_seen = True
            for other in self.endpoints:
                if other.failures and not other.warned:
                    other.warned = True
                    logger.warning("endpoint %s is down; its requests go to the others",
                                   other.url)
        if endpoint.failures:
            logger.info("endpoint %s is back after %d failed tries", endpoint.url,
                        endpoint.failures)
            endpoint.failures, endpoint.resting_until, endpoint.warned = 0, 0.0, False

    def _rest(self, endpoint: Endpoint, retry_after: float | None) -> None:
        """A 429: no requests to this endpoint for its Retry-After (1 s if it gave none)."""
        wait = min(self.max_rest_s, retry_after if retry_after is not None else 1.0)
        endpoint.resting_until = max(endpoint.resting_until, self._clock() + wait)
        logger.debug("endpoint %s rate-limited; resting %.2f s", endpoint.url, wait)

    def stats(self) -> dict[str, dict[str, int | bool]]:
        """Per URL: requests sent, in flight now, and whether it is marked dead."""
        return {e.url: {"sent": e.sent, "in_flight": e.in_flight, "dead": e.failures > 0}
                for e in self.endpoints}

    async def aclose(self) -> None:
        """Close every endpoint's connections."""
        await asyncio.gather(*(e.transport.aclose() for e in self.endpoints))


def _naming_all(exc: BackendError, urls: list[str]) -> BackendError:
    """``exc`` (its type kept, for the runner's retry and fail-fast rules) naming the other
    failing URLs too: when every replica is down the error should say so, not name one."""
    if len(urls) > 1:
        others = ", ".join(u for u in urls[:-1])
        exc.args = (f"{exc} (also failed just now: {others})",) + exc.args[1:]
    return exc


def _moves_on(status: int) -> bool:
    """Statuses that another replica may answer: rate limited, or the server failed."""
    return status == 429 or status >= 500
