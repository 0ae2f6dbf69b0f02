"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

It lives in bench/ because benches run it too; tests import it through tests/conftest.py,
which puts bench/ on ``sys.path``.

Speaks HTTP/1.1 with keep-alive on 127.0.0.1 (port 0 = any free port), in its own
thread and event loop. Replies are deterministic functions of the request, so two runs
over the same items give identical outputs. Latency and faults can be switched while it
runs; it counts requests.

Faults: ``429`` (with Retry-After), ``500``, ``hang`` (answer after ``hang_s``),
``malformed`` (invalid JSON), ``truncated`` (body cut short, connection closed),
``wrong_content`` (valid JSON of the wrong shape), ``html`` (an HTML error page),
``drop`` (close without answering), ``400``, ``401``. With ``redirect_to`` set, every
request (any path) is answered ``307`` to that base URL plus the path.

``max_concurrent`` caps the requests it works on at once (others queue, first come
first served), like a GPU server with a fixed batch: its throughput is then bounded by
``max_concurrent / latency_s``. :meth:`LLMServer.kill` closes every connection and stops,
as a crashed replica would.

Run standalone for benchmarks: ``python bench/llm_server.py --latency 0.1`` prints the
port on stdout and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import math
import random
import socket
import ssl
import sys
import threading
from typing import Any, Callable

Reply = Callable[[dict, int], str]
FAULTS = ("429", "500", "hang", "malformed", "truncated", "wrong_content", "html", "drop",
          "400", "401")
_REASONS = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests",
            500: "Internal Server Error"}


def default_reply(body: dict, index: int) -> str:
    """Deterministic content: a digest of the messages, JSON when a schema was asked for."""
    digest = hashlib.sha1(json.dumps(body.get("messages"), sort_keys=True,
                                     ensure_ascii=False).encode()).hexdigest()[:12]
    if "response_format" in body or "guided_json" in body or "structured_outputs" in body:
        return json.dumps({"label": int(digest, 16) % 11, "echo": digest, "index": index})
    return f"echo {digest} #{index}"


class LLMServer:
    """OpenAI-compatible loopback server; use as a context manager."""

    def __init__(self, *, latency_s: float = 0.0, fault_rate: float = 0.0,
                 faults: tuple[str, ...] = ("429", "500"), seed: int = 0,
                 retry_after_s: float = 0.05, retry_after_ms_header: bool = True,
                 hang_s: float = 30.0, reply: Reply = default_reply,
                 record: bool = False, chunked: bool = False,
                 ssl_context: ssl.SSLContext | None = None,
                 max_concurrent: int | None = None) -> None:
        self.latency_s, self.fault_rate, self.faults = latency_s, fault_rate, faults
        self.max_concurrent = max_concurrent
        self._active = 0
        self._waiting: collections.deque[tuple] = collections.deque()
        self._conns: set[_Connection] = set()
        self.retry_after_s, self.retry_after_ms_header = retry_after_s, retry_after_ms_header
        self.hang_s, self.reply, self.record = hang_s, reply, record
        self.chunked = chunked  # answer with Transfer-Encoding: chunked, in separate writes
        self._ssl = ssl_context
        self.request_count = 0
        self.fault_counts: collections.Counter[str] = collections.Counter()
        self.recorded: list[tuple[dict[str, str], dict]] = []
        self.error_echo = ""  # text to put in error bodies (tests echo a header back)
        self.redirect_to: str | None = None  # answer every request 307 to this base URL
        self._script: collections.deque[str] = collections.deque()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL to give a client (``.../v1``)."""
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}/v1"

    def script(self, *faults: str) -> None:
        """Make the next requests fail in this order (``"ok"`` = no fault)."""
        self._script.extend(faults)

    def reset_counts(self) -> None:
        self.request_count = 0
        self.fault_counts.clear()
        self.recorded.clear()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "LLMServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(5)
            self._loop = None

    def kill(self) -> None:
        """Close every client connection, then stop: a replica that crashed."""
        if self._loop is not None:
            done = threading.Event()

            def abort() -> None:
                for conn in list(self._conns):
                    if conn.transport is not None:
                        conn.transport.abort()
                done.set()
            self._loop.call_soon_threadsafe(abort)
            done.wait(5)
        self.stop()

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024,
                               ssl=self._ssl))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    # -- HTTP --------------------------------------------------------------------------
    # Callbacks and call_later rather than a task per request keep the server's own CPU
    # per request small (~0.1 ms), so benchmarks mostly measure the client.
    def _on_request(self, conn: "_Connection", path: str, headers: dict[str, str],
                    body_bytes: bytes) -> None:
        self.request_count += 1
        if self.max_concurrent:
            if self._active >= self.max_concurrent:
                self._waiting.append((conn, path, headers, body_bytes))
                return
            self._active += 1
        self._handle(conn, path, headers, body_bytes)

    def _reply(self, conn: "_Connection", data: bytes | None, close: bool) -> None:
        conn.reply(data, close)
        self._release()

    def _release(self) -> None:
        """A request finished: with a cap, start the next waiting one."""
        if not self.max_concurrent:
            return
        self._active -= 1
        if self._waiting:
            self._active += 1
            self._handle(*self._waiting.popleft())

    def _handle(self, conn: "_Connection", path: str, headers: dict[str, str],
                body_bytes: bytes) -> None:
        if self.redirect_to is not None:
            location = self.redirect_to.rstrip("/") + path.removeprefix("/v1")
            self._reply(conn, _response(307, b"", headers={"Location": location}), False)
            return
        if not path.endswith("/chat/completions"):
            self._reply(conn, _response(400, b'{"error": {"message": "unknown path"}}'), False)
            return
        body = json.loads(body_bytes or b"{}")
        if self.record:
            self.recorded.append((headers, body))
        fault = self._pick_fault()
        if fault == "ok":
            payload = json.dumps(self._completion(body)).encode()
            if self.chunked:
                assert self._loop is not None
                self._loop.call_later(self.latency_s, _send_chunked, conn, payload, self._loop)
                self._loop.call_later(self.latency_s, self._release)
                return
            delay, data, close = self.latency_s, _response(200, payload), False
        else:
            self.fault_counts[fault] += 1
            delay, data, close = self._fault(fault)
        assert self._loop is not None
        if delay:
            self._loop.call_later(delay, self._reply, conn, data, close)
        else:
            self._reply(conn, data, close)

    def _pick_fault(self) -> str:
        if self._script:
            return self._script.popleft()
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice(self.faults)
        return "ok"

    def _completion(self, body: dict) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        texts = [self.reply(body, i) for i in range(n)]
        return {
            "id": "chatcmpl-loopback", "object": "chat.completion", "created": 0,
            "model": body.get("model", "loopback"),
            "choices": [{"index": i, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": t}}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": prompt_tokens,
                      "completion_tokens": sum(len(t) for t in texts),
                      "total_tokens": prompt_tokens + sum(len(t) for t in texts)},
        }

    def answer_batch_files(self, paths: "list[Any]", out: Any) -> Any:
        """Write ``out`` as ``vllm run-batch -o`` would for the request files ``paths``, answered by
        this server's replies (one output line per request line); returns ``out``."""
        lines = []
        for path in paths:
            for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
                request = json.loads(raw)
                lines.append({"id": f"vllm-{path.stem}-{i}", "custom_id": request["custom_id"], "error": None,
                              "response": {"status_code": 200, "request_id": f"r{i}",
                                           "body": self._completion(request["body"])}})
        out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
        return out

    def _fault(self, fault: str) -> tuple[float, bytes | None, bool]:
        """(delay, bytes to send or None, close afterwards) for an injected fault."""
        error = json.dumps({"error": {"message": f"injected {fault} {self.error_echo}"}}).encode()
        if fault == "429":
            headers = {"Retry-After": str(math.ceil(self.retry_after_s))}
            if self.retry_after_ms_header:
                headers["retry-after-ms"] = str(int(self.retry_after_s * 1000))
            return self.latency_s, _response(429, error, headers=headers), False
        if fault in ("500", "400", "401"):
            return self.latency_s, _response(int(fault), error), False
        if fault == "hang":
            return self.hang_s, None, True
        bodies = {"malformed": b'{"id": "x", "choices": [{"index": 0, "mess',
                  "wrong_content": b'{"object": "list", "data": []}'}
        if fault in bodies:
            return self.latency_s, _response(200, bodies[fault]), False
        if fault == "html":
            return self.latency_s, _response(200, b"<html><body>502 Bad Gateway</body></html>",
                                             content_type="text/html"), False
        if fault == "truncated":
            cut = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 500\r\n\r\n{\"id\": \"chatcmpl\", \"choi")
            return self.latency_s, cut, True
        return self.latency_s, None, True  # drop: close without a response


class _Connection(asyncio.Protocol):
    """One client connection: parses requests from the byte stream, replies when told."""

    def __init__(self, server: LLMServer) -> None:
        self.server, self.buf = server, bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            stop = end + 4 + int(headers.get("content-length", "0"))
            if len(self.buf) < stop:
                return
            body = bytes(self.buf[end + 4:stop])
            del self.buf[:stop]
            parts = lines[0].split(" ")
            self.server._on_request(self, parts[1] if len(parts) > 2 else "/", headers, body)

    def reply(self, data: bytes | None, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if data:
            self.transport.write(data)
        if close:
            self.transport.close()


def dead_url() -> str:
    """A loopback base URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _send_chunked(conn: _Connection, body: bytes, loop: asyncio.AbstractEventLoop) -> None:
    """Head, then the body in three chunks, each in its own write a moment apart."""
    third = max(1, len(body) // 3)
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n"]
    pieces += [b"%x\r\n%s\r\n" % (len(c), c)
               for c in (body[:third], body[third:2 * third], body[2 * third:]) if c]
    pieces.append(b"0\r\n\r\n")
    for i, piece in enumerate(pieces):
        loop.call_later(0.002 * i, conn.reply, piece, False)


def _response(status: int, body: bytes, *, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
            "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def main() -> None:
    """Serve on a free port, print it, and stop when stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--max-concurrent", type=int, default=None,
                        help="requests worked on at once; others queue")
    args = parser.parse_args()
    with LLMServer(latency_s=args.latency, fault_rate=args.fault_rate,
                   max_concurrent=args.max_concurrent) as server:
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
