"""Transports: aiohttp keep-alive behaviour on a scripted raw server, proxies, the factory."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from typing import Callable

import pytest
from pydantic import SecretStr
from yarl import URL

from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import OpenAIBackendConfig
from llm_aug.llm.privacy import is_loopback
from llm_aug.llm.transports import (
    AiohttpTransport,
    HTTPResponse,
    SDKTransport,
    Transport,
    make_transport,
)
from llm_aug.llm.transports.aiohttp_transport import env_proxy
from llm_aug.llm.types import (
    ChatRequest,
    ConnectionDropped,
    MalformedResponse,
    RateLimited,
    Timeout,
    user_messages,
)
from llm_server import LLMServer

PATH = "/chat/completions"
BODY = b'{"model":"m","messages":[{"role":"user","content":"\xe5\xb8\x96\xe5\xad\x90"}]}'
COMPLETION = json.dumps({"choices": [{"index": 0, "message": {"content": "3"}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).encode()
# (delay s, bytes to send or None, close: None = keep alive, 0 = now, > 0 = that many s later)
Action = tuple[float, "bytes | None", "float | None"]


def ok(body: bytes = COMPLETION, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class RawServer:
    """Loopback HTTP/1.1 server: ``respond(connection no., request no. on it)`` scripts replies."""

    def __init__(self, respond: Callable[[int, int], Action], host: str = "127.0.0.1") -> None:
        self.respond, self.host, self.connections, self.requests = respond, host, 0, 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> "RawServer":
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self.host, 0), self._loop)
        self._thread.start()
        self._server = server.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn, n = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests, n = self.requests + 1, n + 1
                delay, data, close = self.respond(conn, n)
                await asyncio.sleep(delay)
                if data:
                    writer.write(data)
                    await writer.drain()
                if close is not None:
                    await asyncio.sleep(close)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def post(transport: Transport, *bodies: bytes) -> list[HTTPResponse]:
    """Send ``bodies`` one after another on one event loop, then close the transport."""
    async def main() -> list[HTTPResponse]:
        try:
            return [await transport.post_json(PATH, b) for b in bodies]
        finally:
            await transport.aclose()
    return asyncio.run(main())


def test_keepalive_reuses_one_connection_and_caps_connections():
    with RawServer(lambda c, n: (0.0, ok(), None)) as srv:
        responses = post(AiohttpTransport(srv.url), *[BODY] * 20)
        assert [r.status for r in responses] == [200] * 20 and srv.connections == 1
        transport = AiohttpTransport(srv.url, max_connections=2)

        async def concurrent() -> None:
            await asyncio.gather(*(transport.post_json(PATH, BODY) for _ in range(16)))
            await transport.aclose()
        asyncio.run(concurrent())
    assert srv.connections == 3 and srv.requests == 36


def test_idle_connection_closed_by_the_server_is_replaced():
    # The server answers, then closes the kept-alive connection (its idle timeout).
    with RawServer(lambda c, n: (0.0, ok(), 0.05)) as srv:
        transport = AiohttpTransport(srv.url)

        async def main() -> list[int]:
            first = await transport.post_json(PATH, BODY)
            await asyncio.sleep(0.3)
            second = await transport.post_json(PATH, BODY)
            await transport.aclose()
            return [first.status, second.status]
        assert asyncio.run(main()) == [200, 200]
    assert srv.connections == 2


def test_kept_alive_connection_closed_on_the_next_request_is_resent():
    # Every connection answers its first request and closes when a second one arrives,
    # as a server does whose idle timeout fires while the request is on its way.
    with RawServer(lambda c, n: (0.0, ok(), None) if n == 1 else (0.0, None, 0)) as srv:
        transport = AiohttpTransport(srv.url)

        async def main() -> HTTPResponse:
            await asyncio.gather(*(transport.post_json(PATH, BODY) for _ in range(2)))
            try:  # two stale pooled connections, then a fresh one
                return await transport.post_json(PATH, BODY)
            finally:
                await transport.aclose()
        assert asyncio.run(main()).status == 200
    assert srv.connections == 3 and srv.requests == 5


def test_fresh_connection_closed_without_answer_is_not_resent():
    with RawServer(lambda c, n: (0.0, None, 0)) as srv:
        with pytest.raises(ConnectionDropped) as info:
            post(AiohttpTransport(srv.url), BODY)
    assert info.value.retryable and srv.requests == 1


def test_chunked_with_trailer_close_delimited_and_gzip_bodies():
    third = len(COMPLETION) // 3
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in
                      (COMPLETION[:third], COMPLETION[third:2 * third], COMPLETION[2 * third:]))
    replies = {
        1: (0.0, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
                 b"chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n", None),
        2: (0.0, ok(gzip.compress(COMPLETION), "Content-Encoding: gzip\r\n"), None),
        3: (0.0, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close"
                 b"\r\n\r\n" + COMPLETION, 0),
    }
    with RawServer(lambda c, n: replies[srv.requests]) as srv:
        responses = post(AiohttpTransport(srv.url), BODY, BODY, BODY)
    assert [r.body for r in responses] == [COMPLETION] * 3


def test_headers_come_back_lower_cased_and_errors_as_responses():
    reply = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nX-Request-ID: abc\r\n"
             b"Content-Length: 2\r\n\r\n{}")
    with RawServer(lambda c, n: (0.0, reply, None)) as srv:
        [response] = post(AiohttpTransport(srv.url), BODY)
    assert response.status == 429 and response.body == b"{}"
    assert response.headers["retry-after"] == "2" and response.headers["x-request-id"] == "abc"


def test_no_answer_in_time_is_a_timeout():
    with RawServer(lambda c, n: (5.0, None, None)) as srv:
        started = time.perf_counter()
        with pytest.raises(Timeout, match="0.3 s"):
            post(AiohttpTransport(srv.url, timeout_s=0.3), BODY)
    assert time.perf_counter() - started < 3


def test_waiting_for_a_free_connection_does_not_count_towards_the_timeout():
    with RawServer(lambda c, n: (0.25, ok(), None)) as srv:
        transport = AiohttpTransport(srv.url, timeout_s=0.4, max_connections=1)

        async def main() -> list[HTTPResponse]:
            try:
                return await asyncio.gather(*(transport.post_json(PATH, BODY) for _ in range(3)))
            finally:
                await transport.aclose()
        assert [r.status for r in asyncio.run(main())] == [200] * 3


def test_refused_connection_is_dropped_and_retryable():
    with pytest.raises(ConnectionDropped) as info:
        post(AiohttpTransport("http://127.0.0.1:9/v1", timeout_s=2), BODY)
    assert info.value.retryable


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_retry_after_seconds_and_non_json_bodies(client):
    replies = [b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
               ok(b"not json at all")]
    request = ChatRequest(id="a", messages=user_messages("帖子"))
    with RawServer(lambda c, n: (0.0, replies[srv.requests - 1], None)) as srv:
        backend = OpenAICompatBackend("m", srv.url, client=client)
        with pytest.raises(RateLimited) as limited:
            asyncio.run(backend.generate([request]))
        with pytest.raises(MalformedResponse):
            asyncio.run(backend.generate([request]))
        asyncio.run(backend.aclose())
    assert limited.value.retry_after == 1.0


@pytest.fixture
def clean_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_loopback_never_goes_through_an_environment_proxy(clean_proxy_env, client):
    clean_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    clean_proxy_env.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with LLMServer() as srv:
        backend = OpenAICompatBackend("m", srv.url, client=client, timeout_s=5)
        [[gen]] = asyncio.run(backend.generate([ChatRequest(id="a", messages=user_messages("x"))]))
        asyncio.run(backend.aclose())
    assert gen.text.startswith("echo ")


def _own_address() -> str:
    """This machine's address on its default route (not loopback), or skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # UDP: sends nothing
            address = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if is_loopback(address):
        pytest.skip("no non-loopback address to serve on")
    return address


def test_environment_proxy_is_used_unless_no_proxy_says_otherwise(clean_proxy_env):
    address = _own_address()
    with LLMServer(record=True) as proxy, \
            RawServer(lambda c, n: (0.0, ok(), None), host=address) as target:
        clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        [via_proxy] = post(AiohttpTransport(target.url, timeout_s=5), BODY)
        assert proxy.recorded[0][0]["host"] == f"{address}:{target.port}"
        clean_proxy_env.setenv("NO_PROXY", f"example.com,{address}")
        assert env_proxy(URL(target.url)) == (None, None)
        [direct] = post(AiohttpTransport(target.url, timeout_s=5), BODY)
    assert via_proxy.status == direct.status == 200
    assert proxy.request_count == 1 and target.requests == 1


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "localhost", "LOCALHOST.", "::1",
                                 "[::1]", "api.localhost"]))
    assert not any(map(is_loopback, ["10.0.0.1", "example.com", "", None, "localhost.example"]))


def test_make_transport_kinds_and_headers():
    key = SecretStr("sk-test-123456")
    with LLMServer(record=True) as srv:
        for kind in ("http", "aiohttp"):
            transport = make_transport(kind, srv.url, {"User-Agent": "t"}, api_key=key)
            assert isinstance(transport, AiohttpTransport) and isinstance(transport, Transport)
            post(transport, BODY)
    for headers, _ in srv.recorded:
        assert headers["authorization"] == "Bearer sk-test-123456"
        assert headers["user-agent"] == "t" and headers["content-type"] == "application/json"
    assert isinstance(make_transport("sdk", srv.url), SDKTransport)
    with pytest.raises(ValueError, match="unknown client"):
        make_transport("curl", srv.url)  # type: ignore[arg-type]
    assert OpenAIBackendConfig(model="m", client="aiohttp").client == "aiohttp"
