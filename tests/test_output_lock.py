"""One run per output: a second run on the same output is refused naming the holder's pid.

The lock is a file beside the output holding the writer's pid; a lock left by a killed
run is taken over. Tested with real processes: in-process locks cannot show either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonlines
import pytest

from clirun import invoke
from conftest import DEMO
from llm_aug.core.errors import UserError
from llm_aug.core.lock import OutputLock, OutputLocked, lock_path, locks_output, output_lock
from llm_server import LLMServer

HOLD = textwrap.dedent("""
    import sys, time
    from llm_aug.core.lock import OutputLock
    OutputLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def _holder(output: Path) -> subprocess.Popen:
    """A process that takes the lock of ``output`` and keeps it until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(output)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_lock_file_sits_beside_the_output_and_holds_the_pid(tmp_path):
    out = tmp_path / "runs" / "p.jsonl"
    with output_lock(out) as lock:
        assert lock.path == lock_path(out) == tmp_path / "runs" / "p.jsonl.lock"
        assert lock.path.read_text().strip() == str(os.getpid())
        with pytest.raises(OutputLocked, match=rf"pid {os.getpid()} \(this process\)"):
            OutputLock(tmp_path / "runs" / ".." / "runs" / "p.jsonl").acquire()  # another spelling
    assert not lock.path.exists()
    with output_lock(out):  # released: free again
        pass


def test_a_live_holder_is_named_and_a_killed_ones_lock_is_taken_over(tmp_path):
    out = tmp_path / "aug"
    holder = _holder(out)
    try:
        with pytest.raises(OutputLocked) as refused:
            OutputLock(out).acquire()
        assert f"pid {holder.pid}" in str(refused.value) and "\n" not in str(refused.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out).read_text().strip() == str(holder.pid)  # left behind by kill -9
    with output_lock(out) as lock:  # stale: taken over
        assert lock.path.read_text().strip() == str(os.getpid())


def test_a_lock_file_naming_a_dead_pid_is_stale(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lock_path(tmp_path / "p.jsonl").write_text(dead + "\n")
    with output_lock(tmp_path / "p.jsonl") as lock:
        assert lock.path.read_text().strip() == str(os.getpid())


def test_decorator_reads_attributes_and_skips_when_told():
    seen = []

    class Cfg:
        out = Path("never-locked")

    @locks_output("cfg.out", unless="dry_run")
    def job(cfg, dry_run=False):
        seen.append(lock_path(cfg.out).exists())
        return "done"

    assert job(Cfg(), dry_run=True) == "done" and seen == [False]


@pytest.mark.parametrize("command", ["classify", "augment", "compare"])
def test_every_llm_job_takes_its_output_lock(tmp_path, command):
    out = tmp_path / ("p.jsonl" if command == "classify" else "out")
    with LLMServer() as srv:
        llm = ["--backend", "openai", "--base-url", srv.url, "--model", "m"]
        args = {
            "classify": ["classify", "--task", "fine", "--input", DEMO / "val.tsv", "--output", out],
            "augment": ["augment", "--method", "llm", "--task", "fine", "--train", DEMO / "train.tsv",
                        "--no-protect", "--out", out],
            "compare": ["prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task",
                        "fine", "--input", DEMO / "val.tsv", "--out", out],
        }[command]
        with output_lock(out):
            result = invoke(*args, *llm)
        assert srv.request_count == 0
    assert isinstance(result.exception, UserError), result.exception
    assert f"pid {os.getpid()}" in str(result.exception)


def _classify_cmd(url: str, out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "llm_aug", "-q", "classify", "--task", "fine", "--input",
            str(DEMO / "train.tsv"), "--output", str(out), "--cache", str(cache), "--backend", "openai",
            "--base-url", url, "--model", "m", "--concurrency", "2"]


def test_second_classify_on_the_same_output_is_refused_with_the_holders_pid(tmp_path):
    out, cache = tmp_path / "p.jsonl", tmp_path / "cache.sqlite"
    with LLMServer(latency_s=0.5) as srv:
        first = subprocess.Popen(_classify_cmd(srv.url, out, cache), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: srv.request_count > 0 or first.poll() is not None)
            assert first.poll() is None, first.communicate()[1]
            second = subprocess.run(_classify_cmd(srv.url, out, cache), capture_output=True, text=True,
                                    timeout=120)
            srv.latency_s = 0.0  # let the first run finish quickly
            assert first.wait(timeout=120) == 0, first.communicate()[1]
        finally:
            if first.poll() is None:
                first.kill()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and str(out) in lines[0], lines
    assert len(list(jsonlines.open(out))) == 66 and not lock_path(out).exists()
