"""Runner throughput against the loopback OpenAI-compatible server (fixed latency).

For each client (``http``: the default aiohttp transport; ``sdk``: the ``openai`` SDK
transport; see llm_aug.llm.transports) it measures, through
:class:`llm_aug.llm.runner.Runner` with cache and results file on:

* throughput at concurrency 1, 8 and 64 as a fraction of ideal (concurrency / latency),
  the 64 row over ``--requests`` requests (2,000 by default);
* client CPU time per request (this process only: the server runs in another);
* a cached rerun of the same items (requests made must be 0) and its wall time;
* the backend alone at 64 in flight (what the runner's bookkeeping costs);
* the sequential way, one backend call after another, and the speed-up over it.

Then the whole CLI, end to end (``bench/cli_throughput.py``): ``llm-aug classify`` in its
own process beside a bare aiohttp client (``bench/bare_client.py``) sending the same
bodies, 64 in flight, at each ``--cli-posts`` size, and the start-up times.

Usage: ``python bench/runner_throughput.py [--requests 2000] [--latency 0.1] [--clients http,sdk]
[--cli-posts 1000,6000] [--cli-reps 3] [--data ../shared/data/sos1k]``
(``--clients ''`` or ``--cli-posts ''`` skips that part).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_throughput import cli_rows
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, SamplingParams, user_messages

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "bench" / "llm_server.py"
LABELS = {"http": "http (aiohttp)", "aiohttp": "aiohttp", "sdk": "sdk (openai SDK)"}


def items(count: int, tag: str) -> list[ChatRequest]:
    """Distinct short Chinese prompts (tagged so runs do not share cache entries)."""
    return [ChatRequest(id=f"{tag}-{i:05d}",
                        messages=user_messages(f"{tag} 第{i}条帖子：最近总是睡不着，很累。",
                                               system="判断自杀风险等级，只输出数字。"),
                        params=SamplingParams(max_tokens=8)) for i in range(count)]


def timed_run(url: str, client: str, concurrency: int, requests: list[ChatRequest],
              workdir: Path, tag: str) -> dict:
    """One Runner.run; wall time, CPU time and counts."""
    backend = OpenAICompatBackend("bench", url, client=client, max_connections=concurrency)
    config = RunnerConfig(concurrency=concurrency, quiet=True, cache_path=workdir / "c.sqlite")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = Runner(backend, config).run(requests, workdir / f"{tag}.jsonl")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert summary.n_ok == len(requests), summary.to_manifest()
    return {"wall": wall, "cpu": cpu, "n": len(requests), "made": summary.requests_made}


def direct(url: str, client: str, requests: list[ChatRequest], concurrency: int) -> float:
    """Requests per second calling the backend directly (no runner): ``concurrency`` loops.

    With concurrency 1 this is the sequential way, one call after another.
    """
    backend = OpenAICompatBackend("bench", url, client=client, max_connections=concurrency)
    pending = iter(requests)

    async def loop() -> None:
        for request in pending:
            await backend.generate([request])

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await backend.aclose()
        return len(requests) / elapsed
    return asyncio.run(main())


def bench_client(url: str, client: str, latency: float, n_big: int, workdir: Path) -> list[str]:
    """Markdown table rows for one client."""
    label = LABELS.get(client, client)
    # Warm-up (imports, first connections), not reported.
    timed_run(url, client, 4, items(8, f"{client}-warm"), workdir, f"{client}-warm")
    rows = []
    for concurrency, count in ((1, 20), (8, 160), (64, n_big)):
        tag = f"{client}-c{concurrency}"
        r = timed_run(url, client, concurrency, items(count, tag), workdir, tag)
        rate = r["n"] / r["wall"]
        rows.append(f"| {label} | runner, concurrency {concurrency} | {r['n']} | {r['wall']:.2f} "
                    f"| {rate:.1f} | {rate / (concurrency / latency):.2f} "
                    f"| {1000 * r['cpu'] / r['n']:.2f} | {r['made']} |")
    big = items(n_big, f"{client}-c64")
    cached = timed_run(url, client, 64, big, workdir, f"{client}-cached")
    rows.append(f"| {label} | cached rerun of the {n_big} | {n_big} | {cached['wall']:.2f} "
                f"| {n_big / cached['wall']:.0f} | - | {1000 * cached['cpu'] / n_big:.3f} "
                f"| {cached['made']} |")
    bare = direct(url, client, items(n_big, f"{client}-bare"), 64)
    rows.append(f"| {label} | backend alone (no runner), 64 in flight | {n_big} "
                f"| {n_big / bare:.2f} | {bare:.1f} | {bare / (64 / latency):.2f} | - | {n_big} |")
    seq_rate = direct(url, client, items(20, f"{client}-seq"), 1)
    c64_rate = n_big / timed_run(url, client, 64, items(n_big, f"{client}-again"), workdir,
                                 f"{client}-again")["wall"]
    rows.append(f"| {label} | sequential calls (no runner) | 20 | {20 / seq_rate:.2f} "
                f"| {seq_rate:.1f} | {seq_rate * latency:.2f} | - | 20 |")
    rows.append(f"| {label} | speed-up: runner at 64 (a second run) over sequential | | | "
                f"x{c64_rate / seq_rate:.1f} | | | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--clients", default="http,sdk",
                        help="comma-separated client kinds: http (aiohttp, the default), sdk")
    parser.add_argument("--cli-posts", default="1000,6000", help="posts per end-to-end CLI run")
    parser.add_argument("--cli-reps", type=int, default=3, help="CLI/bare pairs per size")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sos1k")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, str(SERVER), "--latency", str(args.latency)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        clients = [c for c in args.clients.split(",") if c]
        lines = ["| client | what | requests | wall s | req/s | fraction of ideal "
                 "| client CPU ms/req | requests made |", "|---|---|---|---|---|---|---|---|"] if clients else []
        load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        with tempfile.TemporaryDirectory() as tmp:
            for client in clients:
                lines += bench_client(url, client, args.latency, args.requests, Path(tmp))
            sizes = [int(n) for n in args.cli_posts.split(",") if n]
            if sizes:
                lines += ["", "End to end, fresh processes, same request bodies:", ""]
                lines += cli_rows(url, args.latency, sizes, args.cli_reps, args.data, Path(tmp))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"latency {args.latency * 1000:.0f} ms per request, server in its own process; "
              f"{os.cpu_count()} CPUs, load average {load0} at the start, {load} at the end")
        print("\n".join(lines))
    finally:
        server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
