"""BERT fine-tuning speed: dynamic padding (and length buckets) against padding every row to 150.

Each configuration trains the same rows (``--steps`` batches, one epoch, same seed) in its
own child process so peak-memory figures do not leak between runs; the configurations are
alternated ``--repeats`` times and the median examples/s is reported.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during ``fit``; on the CPU, the growth
of the child's peak resident set size (``resource`` ``ru_maxrss``) across ``fit``, which
includes allocator slack and is coarse for a model this small.

Usage: ``python bench/finetune_speed.py [--model DIR_OR_HUB_ID] [--device cuda --precision bf16]``
Without ``--model`` a random tiny BERT (hidden 128, 2 layers) is built from the data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOS1K = REPO.parent / "shared" / "data" / "sos1k" / "fine" / "train.tsv"
DEMO = REPO / "examples" / "demo" / "train.tsv"
MODES = {  # name: (padding, length_bucketing)
    "pad-to-150": ("max_length", False),
    "dynamic": ("dynamic", False),
    "dynamic+buckets": ("dynamic", True),
}


def load_rows(path: Path, n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` rows drawn (with repeats when the file is short) in a seeded order."""
    from llm_aug.data.io import load_dataset

    data = load_dataset(path)
    rng = random.Random(seed)
    picks = [rng.randrange(len(data)) for _ in range(n)]
    return [data.texts[i] for i in picks], [data.labels[i] for i in picks]


def child(args: argparse.Namespace) -> None:
    """Run one configuration and print one JSON line."""
    import numpy as np
    import torch

    from llm_aug.classifiers.bert import BertClassifier
    from llm_aug.classifiers.bert_data import train_batches

    if args.threads:
        torch.set_num_threads(args.threads)
    padding, bucket = MODES[args.mode]
    X, y = load_rows(Path(args.data), args.steps * args.batch_size, args.seed)
    est = BertClassifier(args.model, max_length=150, batch_size=args.batch_size, epochs=1, lr=2e-5,
                         seed=args.seed, device=args.device, precision=args.precision, padding=padding,
                         length_bucketing=bucket, early_stopping=None, progress=False,
                         labels=list(range(11)))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    est.fit(X, y)
    peak_mib = (torch.cuda.max_memory_allocated() / 2**20 if cuda
                else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    # Replay fit's batch order (same seed) to report how wide the batches were.
    lengths = [len(ids) for ids in est.tokenizer_(X, truncation=True, max_length=150)["input_ids"]]
    batches = train_batches(lengths, args.batch_size, np.random.default_rng(args.seed), bucket)
    widths = [150 if padding == "max_length" else max(lengths[i] for i in b) for b in batches]
    print(json.dumps({"mode": args.mode, "ex_per_s": est.history_[0]["examples_per_s"],
                      "peak_mib": peak_mib, "mean_width": float(np.mean(widths)),
                      "mean_tokens": float(np.mean(lengths)), "device": str(est.device_)}))


def run_child(args: argparse.Namespace, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--model", args.model, "--data", args.data,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
           "--device", args.device, "--precision", args.precision, "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env()).stdout
    return json.loads(out.strip().splitlines()[-1])


def _env() -> dict:
    return {**os.environ, "LLM_AUG_QUIET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TRANSFORMERS_VERBOSITY": "error"}


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    base = statistics.median(r["ex_per_s"] for r in results["pad-to-150"])
    first = results["pad-to-150"][0]
    mem = "CUDA max_memory_allocated" if first["device"].startswith("cuda") else "ru_maxrss growth in fit"
    print(f"data: {args.data}  rows: {args.steps * args.batch_size} ({args.steps} steps x {args.batch_size})"
          f"  mean tokens/row: {first['mean_tokens']:.1f}  device: {first['device']}  precision: {args.precision}"
          f"  threads: {args.threads or 'default'}  repeats: {args.repeats}")
    print(f"{'padding':<16} {'width/batch':>11} {'examples/s (runs)':>30} {'median':>8} {'vs pad-150':>10}"
          f" {'peak MiB':>9}")
    for mode, runs in results.items():
        speeds = [r["ex_per_s"] for r in runs]
        med = statistics.median(speeds)
        print(f"{mode:<16} {runs[0]['mean_width']:>11.1f} {' / '.join(f'{s:.0f}' for s in speeds):>30} "
              f"{med:>8.0f} {med / base:>9.2f}x {max(r['peak_mib'] for r in runs):>9.1f}")
    print(f"peak memory: {mem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="checkpoint dir or hub id (default: a tiny random BERT)")
    parser.add_argument("--data", default=str(SOS1K if SOS1K.is_file() else DEMO))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.model:
            from llm_aug.classifiers.bert import build_tiny_bert
            from llm_aug.data.io import load_dataset

            args.model = str(build_tiny_bert(load_dataset(args.data).texts, Path(tmp) / "tiny",
                                             hidden=128, layers=2, heads=2))
        results: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):  # alternate so drifting machine load hits every mode alike
            for mode in MODES:
                results[mode].append(run_child(args, mode))
        report(results, args)


if __name__ == "__main__":
    main()
