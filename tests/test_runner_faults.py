"""The runner against a faulty loopback server, and killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, user_messages
from llm_server import FAULTS, LLMServer

RETRYABLE = tuple(f for f in FAULTS if f not in ("400", "401"))


def items(count: int) -> list[ChatRequest]:
    return [ChatRequest(id=f"post-{i:04d}", messages=user_messages(f"第{i}条：今天又失眠了"))
            for i in range(count)]


@pytest.mark.slow
def test_500_items_with_20_percent_faults_all_present_exactly_once(tmp_path):
    out = tmp_path / "out.jsonl"
    with LLMServer(fault_rate=0.2, faults=RETRYABLE, retry_after_s=0.02, hang_s=2) as server:
        config = RunnerConfig(concurrency=32, max_retries=8, timeout_s=0.3, quiet=True,
                              backoff_initial_s=0.01, backoff_max_s=0.1)
        summary = Runner(OpenAICompatBackend("m", server.url), config).run(items(500), out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"post-{i:04d}" for i in range(500)]
    assert all(r["error"] is None and len(r["generations"]) == 1 for r in rows)
    assert summary.n_ok == 500 and summary.retries >= 60
    assert set(server.fault_counts) == set(RETRYABLE)  # every kind of fault was met


_CHILD = """
import sys
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/../bench"]  # tests/, and bench/ for llm_server
from test_runner_faults import items
Runner(OpenAICompatBackend("m", sys.argv[1]),
       RunnerConfig(concurrency=4, quiet=True)).run(items(200), sys.argv[2])
"""


def _child(url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, url, str(out),
                             str(Path(__file__).parent)], env={**os.environ, "PYTHONPATH": ""})


def _valid_rows(path: Path) -> int:
    count = 0
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            json.loads(line)
            count += 1
        except ValueError:
            pass
    return count


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path):
    out = tmp_path / "killed.jsonl"
    with LLMServer(latency_s=0.02, record=True) as server:
        child = _child(server.url, out)
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text(encoding="utf-8").count("\n") >= 60):
            assert time.monotonic() < deadline and child.poll() is None, "child ended early"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        finished = _valid_rows(out)
        assert 60 <= finished < 200
        first_requests = server.request_count
        server.reset_counts()

        assert _child(server.url, out).wait(60) == 0
        assert server.request_count == 200 - finished  # finished items were not asked again
        rerun_prompts = Counter(body["messages"][-1]["content"] for _, body in server.recorded)
        assert max(rerun_prompts.values()) == 1
        assert first_requests - finished <= 4  # only the calls in flight at the kill are repeated

        reference = tmp_path / "reference.jsonl"
        Runner(OpenAICompatBackend("m", server.url), RunnerConfig(quiet=True)).run(
            items(200), reference)
    assert out.read_bytes() == reference.read_bytes()
