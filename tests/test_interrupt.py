"""Ctrl-C (or SIGTERM) mid-run: one line saying what is saved, exit 130 (143), the lock
released, a rerun asks only for the rest (issues 11 and 19)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import DEMO
from llm_server import LLMServer

N_POSTS = 33  # examples/demo/val.tsv


def _cmd(url: str, out) -> list[str]:
    return [sys.executable, "-m", "llm_aug", "-q", "classify", "--task", "fine", "--input",
            str(DEMO / "val.tsv"), "--output", str(out), "--backend", "openai", "--base-url", url,
            "--model", "m", "--concurrency", "2"]


def _lines(path) -> int:
    return path.read_text(encoding="utf-8").count("\n") if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, what", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_mid_run_saves_answered_rows_and_exits_with_its_code(tmp_path, sig, code, what):
    out = tmp_path / "p.jsonl"
    raw = tmp_path / "p.raw.jsonl"
    with LLMServer(latency_s=0.25, reply=lambda body, i: "等级：3") as server:
        child = subprocess.Popen(_cmd(server.url, out), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while _lines(raw) < 4:
            assert time.monotonic() < deadline and child.poll() is None, "child ended early"
            time.sleep(0.01)
        child.send_signal(sig)
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == code, stderr
        saved = _lines(raw)
        assert 4 <= saved < N_POSTS and not out.exists()
        assert stderr == f"{what}: {saved} rows saved to {raw}, rerun the same command to resume\n"
        assert not out.with_name(out.name + ".lock").exists()  # released, not left behind
        before = server.request_count
        rerun = subprocess.run(_cmd(server.url, out), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert server.request_count - before == N_POSTS - saved  # answered rows were not asked again
    assert _lines(out) == N_POSTS


def test_interrupt_outside_a_run_says_only_interrupted(tmp_path):
    code = ("import signal, llm_aug.cli as c\n"
            "c.app.registered_commands.clear()\n"
            "@c.app.command()\n"
            "def boom() -> None:\n"
            "    raise KeyboardInterrupt\n"
            "c.main()\n")
    res = subprocess.run([sys.executable, "-c", code, "boom"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 130 and re.fullmatch(r"interrupted\n", res.stderr), res.stderr
