"""``llm-aug augment --method llm`` with the real offline model (Qwen2.5-Coder-0.5B via llama.cpp).

Slow; CI runs it. The 0.5B smoke-test model writes few usable posts, so this checks the
plumbing, not quality: either both levels reach their targets (exit 0) or the run says
which level fell short (exit 3); in both cases every output is present and consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import jsonlines
import pytest

from conftest import DEMO, write
from llm_aug.data.io import load_dataset

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")

OUTPUTS = ("plan.md", "plan.json", "corpus.tsv", "corpus.jsonl", "rejected.jsonl", "report.md",
           "report.html", "manifest.json")


@pytest.fixture
def tiny_binary_train(tmp_path):
    """Six demo posts of level 0 as low risk (0), six of level 9 as high risk (1)."""
    demo = load_dataset(DEMO / "train.tsv")
    rows = [(r.text, 0) for r in demo.rows if r.label == 0] + [(r.text, 1) for r in demo.rows if r.label == 9]
    return write(tmp_path / "train.tsv", "comment\tmyLabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))


def test_llm_augment_with_local_model(tmp_path, tiny_binary_train):
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "llm_aug", "-q", "augment", "--method", "llm", "--task", "binary",
         "--train", str(tiny_binary_train), "--protect", str(DEMO / "val.tsv"), "--balance", "9",
         "--out", str(out), "--backend", "llamacpp", "--model", "test", "--posts-per-request", "3",
         "--shots", "2", "--max-tokens", "128", "--max-requests-per-level", "2", "--concurrency", "1"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode in (0, 3), res.stderr[-3000:]
    assert all((out / name).is_file() for name in OUTPUTS)
    raw = [json.loads(line) for line in (out / "raw" / "generate-r0.jsonl").read_text().splitlines()]
    assert [r["id"] for r in raw] == ["L0-r0-0", "L0-r0-1", "L1-r0-0", "L1-r0-1"]
    assert all(r["error"] is None and r["generations"] for r in raw)

    counts = Counter(load_dataset(out / "corpus.tsv").labels)
    synth = [r for r in jsonlines.open(out / "corpus.jsonl") if r["synthetic"]]
    rejected = list(jsonlines.open(out / "rejected.jsonl"))
    assert sum(counts.values()) == 12 + len(synth) and all(counts[lv] <= 9 for lv in (0, 1))
    assert all(r["rejected_by"] and r["reject_reason"] for r in rejected)
    assert all(r["model"] and len(r["prompt"]["sha"]) == 64 and len(r["exemplar_ids"]) == 2 for r in synth)
    assert not {r["text"] for r in synth} & set(load_dataset(DEMO / "val.tsv").texts)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["usage"]["requests_made"] >= 4 and manifest["usage"]["completion_tokens"] > 0
    report = (out / "report.md").read_text(encoding="utf-8")
    if res.returncode == 0:
        assert counts == {0: 9, 1: 9} and "All levels reached their targets" in report
    else:
        short = manifest["result"]["shortfall"]
        assert short and all(f"level {lv}:" in res.stderr and f"level {lv}:" in report for lv in short)
        assert all(counts[int(lv)] == 9 - n for lv, n in short.items())
