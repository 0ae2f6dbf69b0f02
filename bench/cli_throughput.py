"""End to end: ``llm-aug classify`` in its own process beside a bare aiohttp client.

Both start as fresh processes against the same loopback server and send the same request
bodies (the CLI's own, written by ``classify --batch export``), 64 in flight; each is
timed from spawn to exit (``os.wait4``), interpreter start-up included. ``bare / CLI`` is
the share of the floor the CLI keeps after start-up, prompt rendering, the request cache,
the results file, predictions and manifest. Runs alternate (bare first, then CLI first)
and each pair's ratio is reported: the machine is shared, so only ratios measured
side by side are compared. Posts: SOS-1K train posts with ~5% of their characters changed
(``bench/scale.py``'s ``synthetic``), so every post is distinct and nothing is cached.

Start-up alone, each repeated: ``python -c pass``, ``import aiohttp`` (the bare client's
own import), ``llm-aug --help`` and ``classify --dry-run`` on the largest input.

Called by ``bench/runner_throughput.py`` (``--cli-posts``, ``--cli-reps``).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from _common import CLI, run_child, synthetic

BARE = [sys.executable, str(Path(__file__).with_name("bare_client.py"))]


def _classify(posts: Path, output: Path, url: str, concurrency: int, *extra: str) -> list[str]:
    return CLI + ["classify", "--task", "fine", "--input", str(posts), "--output", str(output),
                  "--backend", "openai", "--base-url", url, "--model", "bench",
                  "--concurrency", str(concurrency), *extra]


def _ok(res: dict, what: str, err: Path) -> float:
    if res["rc"] != 0:
        raise SystemExit(f"{what} failed (exit {res['rc']}): {err.read_text()[-2000:]}")
    return res["wall_s"]


def export_bodies(posts: Path, url: str, work: Path) -> Path:
    """The request bodies the CLI would send for ``posts``, as one Batch API JSONL file."""
    work.mkdir(parents=True)
    batch = work / "export"
    res = run_child(_classify(posts, work / "export.jsonl", url, 64, "--batch", "export",
                              "--batch-dir", str(batch)), work / "export.err")
    _ok(res, "classify --batch export", work / "export.err")
    bodies = work / "bodies.jsonl"
    with bodies.open("w", encoding="utf-8") as out:
        for part in sorted(batch.glob("requests-c1-*.jsonl")):
            out.write(part.read_text(encoding="utf-8"))
    return bodies


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def one_pair(posts: Path, bodies: Path, url: str, concurrency: int, work: Path, cli_first: bool,
             ) -> tuple[float, float]:
    """(bare wall s, CLI wall s), each in a fresh process and a fresh output directory."""
    work.mkdir(parents=True)
    n = _lines(bodies)

    def bare() -> float:
        out = work / "bare.jsonl"
        wall = _ok(run_child(BARE + [str(bodies), url, str(concurrency), str(out)], work / "bare.err"),
                   "bare client", work / "bare.err")
        assert _lines(out) == n, "bare client wrote fewer replies than requests"
        return wall

    def cli() -> float:
        out = work / "cli" / "predictions.jsonl"
        wall = _ok(run_child(_classify(posts, out, url, concurrency), work / "cli.err"),
                   "llm-aug classify", work / "cli.err")
        assert _lines(out) == n, "classify wrote fewer predictions than posts"
        return wall

    if cli_first:
        c = cli()
        return bare(), c
    b = bare()
    return b, cli()


def startup(cmd: list[str], reps: int, work: Path, name: str) -> list[float]:
    """Wall seconds of ``reps`` runs of ``cmd`` (after one untimed warm-up)."""
    err = work / f"{name}.err"
    _ok(run_child(cmd, err), name, err)
    return sorted(_ok(run_child(cmd, err), name, err) for _ in range(reps))


def cli_rows(url: str, latency: float, sizes: list[int], reps: int, data: Path, work: Path,
             concurrency: int = 64) -> list[str]:
    """Markdown tables: CLI vs bare client per size, then start-up times."""
    lines = [f"| posts | ideal s ({concurrency} in flight) | bare aiohttp s | llm-aug classify s "
             "| bare / CLI, each pair | median | worst |", "|---|---|---|---|---|---|---|"]
    posts = None
    for n in sizes:
        posts = synthetic(data / "fine" / "train.tsv", n, work / f"posts-{n}.tsv")
        bodies = export_bodies(posts, url, work / f"export-{n}")
        pairs = [one_pair(posts, bodies, url, concurrency, work / f"run-{n}-{r}", cli_first=r % 2 == 1)
                 for r in range(reps)]
        ratios = [b / c for b, c in pairs]
        lines.append(f"| {n} | {n / (concurrency / latency):.2f} "
                     f"| {' / '.join(f'{b:.2f}' for b, _ in pairs)} "
                     f"| {' / '.join(f'{c:.2f}' for _, c in pairs)} "
                     f"| {' / '.join(f'{x:.2f}' for x in ratios)} | {statistics.median(ratios):.2f} "
                     f"| {min(ratios):.2f} |")
    assert posts is not None, "no sizes"
    lines += ["", "| start-up | runs | min s | median s | max s |", "|---|---|---|---|---|"]
    probes = [("python -c pass", [sys.executable, "-c", "pass"]),
              ("python -c 'import aiohttp' (the bare client's import)", [sys.executable, "-c", "import aiohttp"]),
              ("llm-aug --help", CLI + ["--help"]),
              (f"llm-aug classify --dry-run ({sizes[-1]} posts)",
               _classify(posts, work / "dry" / "p.jsonl", url, concurrency, "--dry-run"))]
    for i, (name, cmd) in enumerate(probes):
        times = startup(cmd, 5, work, f"startup-{i}")
        lines.append(f"| `{name}` | {len(times)} | {times[0]:.2f} | {statistics.median(times):.2f} "
                     f"| {times[-1]:.2f} |")
    return lines
