"""A run that cannot succeed stops at once (issue 11): no server, a rejected key or model.

Retries stay for what may pass (429, 5xx, timeouts, dropped connections: test_runner.py,
test_runner_faults.py); the results file keeps whatever finished before the stop.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from conftest import DEMO
from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import (
    AuthError,
    BadRequest,
    ChatRequest,
    ConnectionDropped,
    NotFound,
    RunAborted,
    ServerError,
    Unreachable,
    user_messages,
)
from llm_server import LLMServer

CANARY = "sk-canary-0123456789abcdef"


def _reqs(n: int) -> list[ChatRequest]:
    return [ChatRequest(id=f"i{k:02d}", messages=user_messages(f"帖子{k}")) for k in range(n)]


def _cfg(**kw) -> RunnerConfig:
    return RunnerConfig(**{"quiet": True, "backoff_initial_s": 1.0, **kw})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_nothing_listening_stops_in_seconds_not_minutes(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    out = tmp_path / "out.jsonl"
    started = time.perf_counter()
    with pytest.raises(RunAborted) as info:
        Runner(OpenAICompatBackend("m", url), _cfg()).run(_reqs(20), out)
    assert time.perf_counter() - started < 3  # was 101 s of retries, then exit 0
    assert str(info.value) == f"cannot reach {url}: connection refused; is the server running?"
    assert isinstance(info.value.cause, Unreachable) and _rows(out) == []


def test_refused_connection_is_a_distinct_still_retryable_error():
    error = Unreachable("x")
    assert isinstance(error, ConnectionDropped) and error.retryable


@pytest.mark.parametrize("error, says", [
    (AuthError("HTTP 401: bad key", status=401), "rejected the credentials"),
    (AuthError("HTTP 403: forbidden", status=403), "rejected the credentials"),
    # a 404 is a NotFound now (llm/http_errors.py), no longer a BadRequest with status 404
    (NotFound("HTTP 404: The model `x` does not exist.", status=404), "check --model"),
])
def test_rejected_key_or_model_on_the_first_request_stops_the_run(tmp_path, error, says):
    backend = FakeBackend(["等级：1"], failures=lambda req, call: error)
    with pytest.raises(RunAborted, match=says):
        Runner(backend, _cfg(concurrency=1)).run(_reqs(20), tmp_path / "out.jsonl")
    assert backend.calls == 1  # never retried, nothing more asked


def test_400_is_per_item_and_does_not_stop_the_run(tmp_path):
    backend = FakeBackend(["等级：1"], failures=lambda req, call: BadRequest("too long", status=400)
                          if req.id == "i00" else None)
    summary = Runner(backend, _cfg(concurrency=1)).run(_reqs(5), tmp_path / "out.jsonl")
    assert summary.n_failed == 1 and summary.n_ok == 4


def test_breaker_trips_after_a_run_of_connection_failures_and_keeps_what_finished(tmp_path):
    down = Unreachable("cannot reach http://127.0.0.1:1/v1: connection refused; is the server running?")
    backend = FakeBackend(["等级：1"], failures=lambda req, call: down if call >= 6 else None)
    out = tmp_path / "out.jsonl"
    runner = Runner(backend, _cfg(concurrency=2, backoff_initial_s=0.01, backoff_max_s=0.02))
    with pytest.raises(RunAborted) as info:
        runner.run(_reqs(40), out)
    message = str(info.value)
    assert message.startswith(f"stopped after {Runner.breaker_threshold} failures in a row: cannot reach")
    assert message.endswith("(6 rows saved, rerun the same command to resume)")
    assert [r["id"] for r in _rows(out)] == [f"i{k:02d}" for k in range(6)]  # finished, in order
    assert all(r["error"] is None for r in _rows(out))
    assert backend.calls == 6 + Runner.breaker_threshold
    backend.failures = None  # the server is back: the rerun asks only for the rest
    summary = runner.run(_reqs(40), out)
    assert summary.n_ok == 40 and summary.n_resumed == 6 and backend.calls == 16 + 34


def test_other_failures_do_not_reset_or_trip_the_breaker(tmp_path):
    flaky = ServerError("HTTP 503", status=503)
    backend = FakeBackend(["等级：1"], failures=lambda req, call: flaky if call % 2 else None)
    summary = Runner(backend, _cfg(concurrency=1, backoff_initial_s=0.0, max_retries=2)).run(_reqs(10))
    assert summary.n_ok == 10  # 5xx are retried as before


def test_abort_message_never_carries_the_api_key(tmp_path):
    with LLMServer() as server:
        server.error_echo = f"Incorrect API key provided: {CANARY}"
        server.script("401")
        backend = OpenAICompatBackend("m", server.url, api_key=CANARY)
        with pytest.raises(RunAborted) as info:
            Runner(backend, _cfg()).run(_reqs(3), tmp_path / "out.jsonl")
    assert "Incorrect API key" in str(info.value) and CANARY not in str(info.value) + repr(info.value)


def test_cli_with_no_server_exits_2_with_one_line_in_seconds(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    posts = tmp_path / "in.tsv"
    posts.write_text("\n".join((DEMO / "val.tsv").read_text(encoding="utf-8").splitlines()[:21]) + "\n",
                     encoding="utf-8")
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-q", "classify", "--task", "fine",
                          "--input", str(posts), "--output", str(tmp_path / "p.jsonl"),
                          "--backend", "openai", "--base-url", url, "--model", "m"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr == f"error: cannot reach {url}: connection refused; is the server running?\n"
    assert time.perf_counter() - started < 30  # the interpreter and imports take most of it
    assert not (tmp_path / "p.jsonl").exists()


def test_transport_names_what_could_not_be_reached():
    import types

    import aiohttp
    from yarl import URL

    from llm_aug.llm.transports.aiohttp_transport import AiohttpTransport

    transport = AiohttpTransport("http://10.1.2.3:8000/v1")
    key = types.SimpleNamespace(host="proxy.local", port=3128, ssl=False)
    dns = aiohttp.ClientConnectorError(key, socket.gaierror(-2, "Name or service not known"))
    assert str(transport._error(dns)) == (
        "cannot reach http://10.1.2.3:8000/v1: host 'proxy.local' not found (DNS); check --base-url")
    no_route = transport._error(aiohttp.ClientConnectorError(key, OSError(113, "No route to host")))
    assert isinstance(no_route, Unreachable) and str(no_route).endswith(": No route to host")
    transport.proxy = URL("http://user:secret@proxy.local:3128")
    refused = aiohttp.ClientProxyConnectionError(key, ConnectionRefusedError(111, "refused"))
    assert str(transport._error(refused)) == ("cannot reach the proxy http://proxy.local:3128 for "
                                              "http://10.1.2.3:8000/v1: connection refused; "
                                              "is the proxy running?")
