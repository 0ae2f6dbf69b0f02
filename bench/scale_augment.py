"""How ``llm-aug augment`` cost grows with the number of synthetic posts (issues 12, 19).

Starts a loopback OpenAI-compatible generator in its own process (so it does not share
the client's GIL) that answers every generation request, then runs ``llm-aug augment
--method llm --balance N --concurrency 64`` as a child process for each size (total
synthetic posts = 11 levels x N) and reports wall
time, rows/s, the child's own peak RSS (``os.wait4``) and the first and last rounds'
candidates/s from the run's manifest.

The generator's posts (``--text``):

- ``realistic`` (default): three 8-30 character pieces of random SOS-1K train/val posts
  (read from ``--data`` at run time) joined by "，", with 1-3 random characters drawn
  from those posts inserted; 20% of the posts are verbatim val posts (planted protected
  posts, for the leakage filter); 10 posts per reply whatever the prompt asks for (5), as
  in issue 19. Real Chinese text is Zipfian, and recombined text reuses the same n-grams
  over and over: what the near-duplicate index must cope with;
- ``uniform``: 5 posts per reply (as asked), characters drawn uniformly from a
  70-character pool (every n-gram rare: the easy case the issue-12 figures were measured
  on, kept for comparison).

``--repeat-levels`` makes the generator repeat a small pool of posts for some levels, so
those levels cannot be filled and the run goes through every round up to its cap (the
many-rounds case). Optionally it also times ``augment`` (llm and synonym) on a training
file of 100,000 rows.

    python bench/scale_augment.py [--sizes 1100,11000,110000] [--text realistic|uniform|both]
                                  [--skip-big-train] [--skip-repeat]

``run(sizes, data_dir, work)`` is what ``bench/scale.py`` calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# bench/ is not a package: a script run as `python bench/X.py` has bench/ on sys.path.
from _common import ROOT, run_child, synthetic, target_note
from realtext import RealText  # the recombined posts the scale tests use too

LEVELS = 11
REPEAT_LEVELS = "8,10"  # the two smallest SOS-1K levels: 10 distinct posts each cannot fill them
_POOL = ("天地山水风云花草木日月星辰春夏秋冬东南西北红黄蓝绿鱼鸟虫马牛羊猫狗桌椅门窗书纸墨茶饭菜米面"
         "河湖海岛林田路桥城村楼房衣帽鞋伞灯镜钟琴棋画歌舞")


PLANTED = 0.2  # share of realistic posts that are verbatim protected (val) posts
PER_REPLY = 10  # realistic replies: 10 posts, whatever the prompt asks for (5 by default)


def _post(rng: random.Random) -> str:
    """A 22-30 character post of plain characters (passes every content filter)."""
    chars = [rng.choice(_POOL) for _ in range(rng.randint(20, 28))]
    return "".join(chars[:10]) + "，" + "".join(chars[10:]) + "。"


def real_text(data_dir: Path) -> RealText:
    """Posts recombined from SOS-1K fine train and val, 20% of them verbatim val posts."""
    def texts(split: str) -> list[str]:
        lines = (data_dir / "fine" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        return [line.split("\t")[0] for line in lines]

    val = texts("val")
    return RealText(texts("train") + val, protected=val, planted=PLANTED)


def make_reply(repeat_levels: set[int], pool: int = 10, text: RealText | None = None, per_reply: int = 0):
    """Reply function for the loopback server: ``m`` posts of the requested level.

    ``per_reply`` > 0: that many posts whatever the prompt asks for (the issue's generator
    answered 10 when asked for 5; the extra posts are candidates like the rest).
    Distinct per request (seeded by the request body) unless the level is in
    ``repeat_levels``: then the posts come from a fixed pool of ``pool`` per level.
    ``text`` None: uniform-alphabet posts, else posts recombined from real ones.
    """
    import re

    level_re, m_re = re.compile(r"目标等级：(\d+)级"), re.compile(r"请写出(\d+)条")
    make = _post if text is None else text.post

    def reply(body: dict, index: int) -> str:
        prompt = body["messages"][-1]["content"]
        level = int(level_re.search(prompt).group(1))
        m = per_reply or int(m_re.search(prompt).group(1))
        key = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        rng = random.Random(f"{key}:{index}")
        if level in repeat_levels:
            posts = [make(random.Random(f"L{level}:{rng.randrange(pool)}")) for _ in range(m)]
        else:
            posts = [make(rng) for _ in range(m)]
        return json.dumps(posts, ensure_ascii=False)
    return reply


def serve(repeat_levels: set[int], text: str, data_dir: Path, per_reply: int) -> None:
    """Serve the generator on a free port, print it, stop when stdin closes."""
    from llm_server import LLMServer

    real = real_text(data_dir) if text == "realistic" else None
    with LLMServer(reply=make_reply(repeat_levels, text=real, per_reply=per_reply)) as server:
        print(server.port, flush=True)
        sys.stdin.read()


class Generator:
    """The generator server as a child process (a context manager giving its base URL)."""

    def __init__(self, text: str, data_dir: Path, repeat_levels: str = "") -> None:
        self.args = [sys.executable, __file__, "--serve", "--text", text, "--data", str(data_dir),
                     "--repeat-levels", repeat_levels, "--per-reply", str(PER_REPLY if text == "realistic" else 0)]

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(10)


def _rounds_note(out: Path) -> tuple[str, list[dict[str, Any]]]:
    """'first/last round A/B cand/s' from the run's manifest (its per-round figures)."""
    try:
        rounds = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["result"]["round_stats"]
    except (OSError, KeyError, ValueError):
        return "no per-round figures", []
    if not rounds:
        return "no rounds", []
    first, last = rounds[0]["candidates_per_s"], rounds[-1]["candidates_per_s"]
    ratio = f" ({last / first:.2f}x)" if len(rounds) > 1 and first else ""
    return f"{len(rounds)} round(s), first/last round {first:,.0f}/{last:,.0f} cand/s{ratio}", rounds


def _augment(url: str, method: str, train: Path, val: Path, balance: str, out: Path,
             extra: list[str] = ()) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "llm_aug", "--quiet", "augment", "--method", method, "--task", "fine",
           "--train", str(train), "--protect", str(val), "--balance", balance, "--out", str(out),
           "--backend", "openai", "--base-url", url, "--model", "loopback", "--concurrency", "64", *extra]
    res = run_child(cmd, out.with_suffix(".log"))
    wall, rss, rc = res["wall_s"], res["peak_rss_mb"], res["rc"]
    note, rounds = _rounds_note(out)
    result = {}
    if (out / "manifest.json").exists():
        result = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["result"]
    return {"wall_s": wall, "peak_rss_mb": rss, "rc": rc, "note": note, "rounds": rounds,
            "n_candidates": result.get("n_candidates", 0),
            "added": sum(result.get("after", {}).values()) - sum(result.get("before", {}).values())}


def _row(step: str, r: dict[str, Any]) -> dict[str, Any]:
    exit_note = "" if r["rc"] == 0 else f", exit {r['rc']}"
    return {"step": step, "rows": r["added"], "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"],
            "note": f"{r['n_candidates']:,} candidates, {r['note']}{exit_note}"}


def run(sizes: list[int], data_dir: Path, work: Path, *, texts: tuple[str, ...] = ("realistic",),
        repeat: bool = False, big_train_rows: int = 0) -> list[dict]:
    """One row per text kind and size (total posts after balancing, 11 levels), plus extra cases.

    ``rows`` is the synthetic posts added (the size minus SOS-1K's real posts); rows of
    100,000 and more carry the issue's target (<= 15 min, <= 1.5 GB).
    ``repeat``: also run 11,000 (else the smallest size) with a generator that repeats
    itself for two levels (they stay short: rounds go on up to the request cap).
    ``big_train_rows``: also time ``augment --method llm`` and ``--method synonym``
    (``--balance x1.1``: ~8,000 posts) on a training file of that many rows.
    Extra cases use the first of ``texts``.
    """
    train, val = data_dir / "fine" / "train.tsv", data_dir / "fine" / "val.tsv"
    rows: list[dict] = []
    for text in texts:
        with Generator(text, data_dir) as url:
            for n in sizes:
                r = _row(f"augment llm, {text} text", _augment(url, "llm", train, val, str(n // LEVELS),
                                                                work / f"aug-{text}-{n}"))
                if r["rows"] >= 100_000:
                    r["note"] += "; " + target_note(r, max_s=900, max_mb=1536)
                rows.append(r)
            if big_train_rows and text == texts[0]:
                big = synthetic(train, big_train_rows, work / f"train-{big_train_rows}.tsv")
                for method in ("llm", "synonym"):
                    r = _augment(url, method, big, val, "x1.1", work / f"big-{method}")
                    rows.append(_row(f"augment {method} on {big_train_rows:,}-row train, {text} text", r))
    if repeat and sizes:
        n = 11_000 if 11_000 in sizes else min(sizes)
        with Generator(texts[0], data_dir, REPEAT_LEVELS) as url:
            r = _augment(url, "llm", train, val, str(n // LEVELS), work / f"aug-repeat-{n}")
        rows.append(_row(f"augment llm {n:,}, 2 levels unfillable, {texts[0]} text", r))
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| step | rows | wall s | rows/s | peak RSS MB | note |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['rows']:,} | {r['wall_s']:.1f} | {r['rows'] / max(r['wall_s'], 1e-9):,.0f} | "
              f"{r['peak_rss_mb']:,.0f} | {r['note']} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1100,11000,110000", help="total synthetic posts, comma-separated")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sos1k")
    parser.add_argument("--big-train-rows", type=int, default=100_000)
    parser.add_argument("--skip-big-train", action="store_true", help="skip the 100,000-row training file case")
    parser.add_argument("--skip-repeat", action="store_true", help="skip the unfillable-levels (many rounds) case")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--text", default="realistic", choices=("realistic", "uniform", "both"),
                        help="generator posts: recombined real posts, a uniform 70-character alphabet, or both")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat-levels", default="", help=argparse.SUPPRESS)
    parser.add_argument("--per-reply", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve({int(x) for x in args.repeat_levels.split(",") if x}, args.text, args.data, args.per_reply)
        return
    sizes = [int(x) for x in args.sizes.split(",") if x]
    texts = ("realistic", "uniform") if args.text == "both" else (args.text,)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)).resolve()  # the children run in the repository root
        work.mkdir(parents=True, exist_ok=True)
        rows = run(sizes, args.data.resolve(), work, texts=texts, repeat=not args.skip_repeat,
                   big_train_rows=0 if args.skip_big_train else args.big_train_rows)
    print(table(rows))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
