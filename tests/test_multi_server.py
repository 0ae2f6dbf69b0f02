"""Several replicas behind one backend (issue 12): least-loaded routing, draining a dead one.

Unit tests drive :class:`RoutingTransport` with scripted transports and a fake clock;
the rest run the runner and the CLI against loopback servers started here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading

import pytest
import yaml

from clirun import assert_ok, invoke
from conftest import DEMO
from llm_aug.core.errors import UserError
from llm_aug.llm import load_llm_config
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.privacy import RemoteNotAllowed
from llm_aug.llm.runner import Runner
from llm_aug.llm.transports.base import HTTPResponse
from llm_aug.llm.transports.routing import RoutingTransport
from llm_aug.llm.types import (
    BackendError,
    ChatRequest,
    RunAborted,
    Timeout,
    Unreachable,
    user_messages,
)
from llm_server import LLMServer, dead_url

OK = HTTPResponse(200, {}, b"{}")


class Scripted:
    """A transport answering from a script (a response, or an error to raise); OK once spent."""

    def __init__(self, *script: HTTPResponse | BackendError) -> None:
        self.script, self.calls = list(script), 0
        self.gate: asyncio.Event | None = None  # when set, requests wait for it

    async def post_json(self, path: str, body: bytes) -> HTTPResponse:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.script.pop(0) if self.script else OK
        if isinstance(outcome, BackendError):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _router(*transports: Scripted, clock: Clock | None = None, **kw) -> RoutingTransport:
    return RoutingTransport([(f"http://10.0.0.{i}:8000/v1", t) for i, t in enumerate(transports)],
                            clock=clock or Clock(), **kw)


def _post(router: RoutingTransport) -> HTTPResponse:
    return asyncio.run(router.post_json("/chat/completions", b"{}"))


def _reqs(n: int) -> list[ChatRequest]:
    return [ChatRequest(id=f"p{k:03d}", messages=user_messages(f"帖子{k}")) for k in range(n)]


def _runner(urls: str | list[str], concurrency: int = 8, cache=None, **kw) -> Runner:
    return Runner(OpenAICompatBackend("m", urls, **kw),
                  RunnerConfig(quiet=True, backoff_initial_s=0.05, concurrency=concurrency,
                               cache_path=cache))


# -- routing, unit ------------------------------------------------------------------------
def test_idle_endpoints_take_turns_and_the_least_loaded_one_is_chosen():
    a, b = Scripted(), Scripted()
    router = _router(a, b)
    for _ in range(4):
        _post(router)
    assert (a.calls, b.calls) == (2, 2)

    async def busy_a() -> None:
        a.gate = asyncio.Event()  # a's requests wait; b answers at once
        held = asyncio.create_task(router.post_json("/x", b"{}"))  # a's turn
        await asyncio.sleep(0)
        for _ in range(3):  # a has one in flight, b none: b every time, turns or not
            await router.post_json("/x", b"{}")
        a.gate.set()
        await held
    a.calls = b.calls = 0
    asyncio.run(busy_a())
    assert (a.calls, b.calls) == (1, 3)


def test_a_dead_endpoint_is_drained_probed_after_its_cooldown_and_comes_back(caplog):
    clock = Clock()
    a = Scripted(Unreachable("cannot reach a"), Unreachable("cannot reach a"))
    b = Scripted()
    router = _router(a, b, clock=clock, cooldown_s=2.0)
    with caplog.at_level(logging.INFO, logger="llm_aug.llm.transports.routing"):
        assert _post(router).status == 200  # a refused; the same request went to b
        assert (a.calls, b.calls) == (1, 1) and router.stats()[router.endpoints[0].url]["dead"]
        for _ in range(3):
            _post(router)
        assert a.calls == 1  # resting
        clock.now += 2.0
        _post(router)  # the probe fails: the cool-down doubles
        assert a.calls == 2 and router.endpoints[0].resting_until == clock.now + 4.0
        clock.now += 4.0
        _post(router)  # this probe succeeds
        assert a.calls == 3 and not router.stats()[router.endpoints[0].url]["dead"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "http://10.0.0.0:8000/v1" in warnings[0].getMessage()
    assert any("is back" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


def test_5xx_moves_on_but_4xx_is_the_answer():
    a = Scripted(HTTPResponse(503, {}, b"down"), HTTPResponse(400, {}, b"bad"))
    b = Scripted()
    router = _router(a, b)
    assert _post(router).status == 200 and router.stats()[router.endpoints[0].url]["dead"]
    router.endpoints[0].resting_until = 0.0  # due for a probe
    router._turn = 0
    assert _post(router).status == 400 and b.calls == 1  # a 400 would be a 400 anywhere


def test_429_rests_only_that_endpoint_for_its_retry_after():
    clock = Clock()
    a = Scripted(HTTPResponse(429, {"retry-after": "3"}, b"slow down"))
    b = Scripted()
    router = _router(a, b, clock=clock)
    assert _post(router).status == 200 and (a.calls, b.calls) == (1, 1)
    assert not router.stats()[router.endpoints[0].url]["dead"]
    _post(router)
    assert a.calls == 1
    clock.now += 3.0
    _post(router)
    _post(router)
    assert a.calls == 2


def test_when_every_endpoint_fails_the_last_error_reaches_the_caller():
    clock = Clock()
    a, b = Scripted(*[Unreachable("a")] * 3), Scripted(*[Timeout("b")] * 3)
    router = _router(a, b, clock=clock)
    with pytest.raises(Timeout):
        _post(router)
    assert (a.calls, b.calls) == (1, 1)
    with pytest.raises(BackendError):  # both resting: one real try, on the one due back first
        _post(router)
    assert a.calls + b.calls == 3
    both_5xx = _router(Scripted(HTTPResponse(500, {}, b"x")), Scripted(HTTPResponse(502, {}, b"y")))
    assert _post(both_5xx).status == 502  # the response itself goes back, for the runner to retry


def test_a_setup_error_is_not_hidden_by_failover():
    a = Scripted(BackendError("TLS certificate of 10.0.0.0 not trusted"))
    router = _router(a, Scripted())
    with pytest.raises(BackendError, match="TLS"):
        _post(router)


# -- config, CLI flags, privacy -----------------------------------------------------------
def test_config_takes_one_url_or_a_list_and_rejects_empty_or_repeated():
    one = load_llm_config({"backend": {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}})
    assert one.backend.base_url == ["http://127.0.0.1:1/v1"]
    for bad, message in (([], "at least one URL"),
                         (["http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1/"], "listed twice")):
        with pytest.raises(UserError, match=message):
            load_llm_config({"backend": {"kind": "openai", "model": "m", "base_url": bad}})


def test_one_remote_url_among_local_ones_refuses_them_all():
    urls = ["http://127.0.0.1:8000/v1", "https://api.example.com/v1"]
    with pytest.raises(RemoteNotAllowed, match="allow-remote"):
        OpenAICompatBackend("m", urls)
    backend = OpenAICompatBackend("m", urls, allow_remote=True)
    assert backend.describe()["base_url"] == urls


def test_base_url_with_another_backend_fails_in_one_line(tmp_path):
    result = invoke("classify", "--task", "fine", "--input", DEMO / "val.tsv",
                    "--output", tmp_path / "p.jsonl", "--backend", "fake",
                    "--base-url", "http://127.0.0.1:1/v1", "--base-url", "http://127.0.0.1:2/v1")
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == "--base-url is for --backend openai, not fake"


# -- runner and CLI against loopback servers ----------------------------------------------
def test_requests_spread_over_two_servers_and_share_one_cache(tmp_path):
    with LLMServer(latency_s=0.01) as s1, LLMServer(latency_s=0.01) as s2:
        runner = _runner([s1.url, s2.url], concurrency=6, cache=tmp_path / "c.sqlite")
        summary = runner.run(_reqs(60), tmp_path / "out.jsonl")
        assert summary.n_ok == 60 and summary.retries == 0
        assert s1.request_count >= 15 and s2.request_count >= 15
        assert s1.request_count + s2.request_count == 60
        single = _runner(s2.url, cache=tmp_path / "c.sqlite")
        assert single.namespace == runner.namespace == "openai:m"
        assert single.run(_reqs(60), tmp_path / "again.jsonl").n_cached == 60


def test_a_server_killed_mid_run_loses_no_row(tmp_path):
    killer: list[threading.Thread] = []

    def reply(body: dict, index: int) -> str:
        if dying.request_count == 15 and not killer:  # from this server's own thread: kill from another
            killer.append(threading.Thread(target=dying.kill))
            killer[0].start()
        return "等级：3"

    dying = LLMServer(latency_s=0.02, reply=reply).start()
    with LLMServer(latency_s=0.02) as healthy:
        summary = _runner([dying.url, healthy.url]).run(_reqs(120), tmp_path / "out.jsonl")
        killer[0].join(5)
        assert summary.n_ok == 120 and summary.n_failed == 0 and summary.retries == 0
        assert 15 <= dying.request_count < 40 and healthy.request_count >= 80
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == [r.id for r in _reqs(120)]
    assert all(r["error"] is None for r in rows)


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_a_replica_refusing_from_the_start_is_skipped_with_one_warning(tmp_path, caplog, client):
    dead = dead_url()
    with LLMServer() as alive, caplog.at_level(logging.WARNING):
        summary = _runner([dead, alive.url], 4, api_key="sk-multi-secret-42", client=client).run(
            _reqs(40), tmp_path / "out.jsonl")
        assert summary.n_ok == 40 and summary.retries == 0 and alive.request_count == 40
    warned = [r.getMessage() for r in caplog.records if r.name.endswith("routing")]
    assert len(warned) == 1 and dead in warned[0] and "sk-multi" not in caplog.text


@pytest.mark.parametrize("fault", ["500", "hang", "drop"])
def test_a_failing_replica_costs_no_row_and_no_runner_retry(tmp_path, fault):
    with LLMServer(fault_rate=1.0, faults=(fault,), hang_s=5) as bad, LLMServer() as good:
        runner = _runner([bad.url, good.url], 4, timeout_s=0.3)  # the transport's timeout
        summary = runner.run(_reqs(30), tmp_path / "out.jsonl")
        assert summary.n_ok == 30 and summary.retries == 0
        assert bad.fault_counts[fault] >= 1 and good.request_count >= 30


def test_a_slow_server_gets_fewer_requests_than_a_fast_one(tmp_path):
    with LLMServer(latency_s=0.5) as slow, LLMServer() as fast:
        summary = _runner([slow.url, fast.url], 4).run(_reqs(60), tmp_path / "out.jsonl")
        assert summary.n_ok == 60
        assert slow.request_count * 2 <= fast.request_count


def test_all_servers_dead_stops_the_run_as_with_one(tmp_path):
    urls = [dead_url(), dead_url()]
    with pytest.raises(RunAborted, match="connection refused"):
        _runner(urls).run(_reqs(20), tmp_path / "out.jsonl")


def test_cli_all_servers_dead_exits_2_with_one_line(tmp_path):
    urls = [dead_url(), dead_url()]
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-q", "classify", "--task", "fine",
                          "--input", str(DEMO / "val.tsv"), "--output", str(tmp_path / "p.jsonl"),
                          "--backend", "openai", "--base-url", urls[0], "--base-url", urls[1],
                          "--model", "m"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: cannot reach http://127.0.0.1:") and "refused" in res.stderr
    assert all(url in res.stderr for url in urls)  # every replica named, not only the last one


def test_cli_classify_with_repeated_base_url_and_with_a_list_in_llm_config(tmp_path):
    with LLMServer() as s1, LLMServer() as s2:
        args = ["classify", "--task", "fine", "--input", DEMO / "val.tsv", "--model", "m"]
        first = assert_ok(invoke(*args, "--output", tmp_path / "a.jsonl", "--backend", "openai",
                                 "--base-url", s1.url, "--base-url", s2.url))
        assert json.loads(first.stdout)["n_ok"] == 33
        assert s1.request_count > 0 and s2.request_count > 0
        manifest = json.loads((tmp_path / "a.manifest.json").read_text(encoding="utf-8"))
        assert manifest["config"]["llm"]["backend"]["base_url"] == [s1.url, s2.url]
        s1.reset_counts(), s2.reset_counts()
        config = tmp_path / "llm.yaml"
        config.write_text(yaml.safe_dump({"backend": {"kind": "openai", "model": "m2",
                                                      "base_url": [s1.url, s2.url]}}))
        assert_ok(invoke(*args, "--output", tmp_path / "b.jsonl", "--llm-config", config))
        assert s1.request_count > 0 and s2.request_count > 0
        assert s1.request_count + s2.request_count == 33
