"""How training and prediction cost grow with data size (part of issue 12's bench/scale.py).

Builds synthetic training files of 1k, 10k and 100k posts from SOS-1K train (each post
with a few random characters changed, so every row is distinct), then times
``llm-aug train --method M`` and ``llm-aug predict`` in one run on this machine and prints
wall time, rows/s and peak RSS (of the child process). Augment and classify rows are not
measured yet.

    python bench/scale.py [--sizes 1000,10000,100000] [--method tfidf-svm] [--data ../shared/data/sos1k]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic(train: Path, n: int, out: Path, seed: int = 0) -> Path:
    """``n`` distinct posts drawn from ``train``, each with ~5% of its characters replaced."""
    rng = random.Random(seed)
    rows = [line.split("\t") for line in train.read_text(encoding="utf-8").splitlines()[1:]]
    alphabet = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"
    lines = ["comment\tmyLabel"]
    for i in range(n):
        text, label = rows[i % len(rows)]
        chars = list(text)
        for _ in range(max(1, len(chars) // 20)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        lines.append(f"{''.join(chars)}{i}\t{label}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS in MB."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--method", default="tfidf-svm")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sos1k")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "llm_aug", "--quiet"]
    print("| step | rows | wall s | rows/s | peak RSS MB (max so far) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in map(int, args.sizes.split(",")):
            data = synthetic(args.data / "fine" / "train.tsv", n, work / f"train-{n}.tsv")
            model = work / f"model-{n}"
            wall, rss = timed(cli + ["train", "--task", "fine", "--method", args.method, "--train", str(data),
                                     "--val", str(args.data / "fine" / "val.tsv"), "--out", str(model)])
            print(f"| train {args.method} | {n:,} | {wall:.1f} | {n / wall:.0f} | {rss:.0f} |", flush=True)
            wall, rss = timed(cli + ["predict", str(model), "--input", str(data), "--output", str(work / f"p-{n}.jsonl")])
            print(f"| predict {args.method} | {n:,} | {wall:.1f} | {n / wall:.0f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
