"""Throughput of one server vs two replicas, and draining a replica killed mid-run.

Each server is ``bench/llm_server.py`` in its own process (so it does not share this
process's GIL), capacity-bound like a GPU server: at most ``--per-server`` requests
worked on at once, each taking ``--latency`` seconds, so one server tops out at
``per_server / latency`` requests/s. The same number of requests goes through
:class:`llm_aug.llm.runner.Runner` against one server at concurrency K and against two
(``base_url`` a list) at 2K; the ratio of the two throughputs, measured in this one run,
should be >= 1.8 (issue 12). Then two servers again, one killed (SIGKILL) a third of the
way through: every row must still come back, none failed.

Usage: ``python bench/multi_server.py [--requests 800] [--latency 0.1] [--per-server 8] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, RunSummary, SamplingParams, user_messages

SERVER = Path(__file__).resolve().parent / "llm_server.py"


def start_server(latency: float, per_server: int) -> tuple[subprocess.Popen, str]:
    """A loopback server process and its base URL."""
    proc = subprocess.Popen([sys.executable, str(SERVER), "--latency", str(latency),
                             "--max-concurrent", str(per_server)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()  # the server stops when its stdin closes
        proc.wait(10)


def items(count: int, tag: str) -> list[ChatRequest]:
    """Distinct short prompts (tagged so no two runs share anything)."""
    return [ChatRequest(id=f"{tag}-{i:05d}",
                        messages=user_messages(f"{tag} 第{i}条帖子：最近总是睡不着，很累。"),
                        params=SamplingParams(max_tokens=8)) for i in range(count)]


def timed_run(urls: list[str], concurrency: int, requests: list[ChatRequest]) -> tuple[float, RunSummary]:
    """Wall seconds and summary of one Runner.run over ``urls``."""
    backend = OpenAICompatBackend("bench", urls, max_connections=concurrency)
    started = time.perf_counter()
    summary = Runner(backend, RunnerConfig(concurrency=concurrency, quiet=True)).run(requests)
    return time.perf_counter() - started, summary


def compare(urls: list[str], args: argparse.Namespace, repeat: int) -> float:
    """Print one server vs two; return the throughput ratio."""
    k, n = args.per_server, args.requests
    one_s, one = timed_run(urls[:1], k, items(n, f"one{repeat}"))
    two_s, two = timed_run(urls, 2 * k, items(n, f"two{repeat}"))
    assert one.n_ok == n and two.n_ok == n, (one.to_manifest(), two.to_manifest())
    ideal = k / args.latency
    print(f"| one server, concurrency {k} | {n / one_s:7.1f} | {n / one_s / ideal:5.0%} |")
    print(f"| two servers, concurrency {2 * k} | {n / two_s:7.1f} | {n / two_s / (2 * ideal):5.0%} |")
    ratio = one_s / two_s
    print(f"ratio two/one: {ratio:.2f}x (target >= 1.8)")
    return ratio


def drain(args: argparse.Namespace) -> RunSummary:
    """Two servers, one killed a third of the way through; every row must come back."""
    servers = [start_server(args.latency, args.per_server) for _ in range(2)]
    expected = args.requests / (2 * args.per_server / args.latency)
    timer = threading.Timer(expected / 3, servers[0][0].kill)
    timer.start()
    try:
        wall, summary = timed_run([u for _, u in servers], 2 * args.per_server,
                                  items(args.requests, "drain"))
    finally:
        timer.cancel()
        for proc, _ in servers:
            stop_server(proc)
    print(f"drain: replica killed at ~{expected / 3:.1f} s; {summary.n_ok}/{args.requests} rows ok, "
          f"{summary.n_failed} failed, runner retries {summary.retries}, {wall:.1f} s")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--per-server", type=int, default=8, help="requests a server works on at once")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.requests} requests, latency {args.latency} s, {args.per_server} per server, "
          f"load average {os.getloadavg()[0]:.2f}")
    servers = [start_server(args.latency, args.per_server) for _ in range(2)]
    try:
        print("| setting | requests/s | of ideal |\n|---|---|---|")
        ratios = [compare([u for _, u in servers], args, r) for r in range(args.repeats)]
    finally:
        for proc, _ in servers:
            stop_server(proc)
    summary = drain(args)
    print(f"ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
    if min(ratios) < 1.8 or summary.n_ok != args.requests:
        sys.exit(1)


if __name__ == "__main__":
    main()
