"""prompts optimize with the embedded test model (``--backend llamacpp --model test``; slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import DEMO, write
from llm_aug.llm.cache import RequestCache

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")


def _head(src, dst, n):
    lines = src.read_text(encoding="utf-8").splitlines()
    return write(dst, "\n".join(lines[:n + 1]) + "\n")


def test_small_search_with_the_test_model_stays_in_budget_and_reruns_from_cache(tmp_path):
    train, val = _head(DEMO / "train.tsv", tmp_path / "train.tsv", 8), _head(DEMO / "val.tsv", tmp_path / "val.tsv", 6)
    out = tmp_path / "opt"
    args = [sys.executable, "-m", "llm_aug", "-q", "prompts", "optimize", "classify/fewshot.v1", "--task", "fine",
            "--train", train, "--val", val, "--budget", 40, "--candidates", 2, "--shots", 2, "--n-boot", 200,
            "--out", out, "--backend", "llamacpp", "--model", "test"]
    first = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["requests_spent"] <= 40 and report["candidates"][0]["id"] == "base"
    # 8 (base on train) + 12 (val reserve) + 2 x 6: both exemplar sets fit
    assert len(report["candidates"]) == 3 and all(0 <= c["cv_score"] <= 1 for c in report["candidates"])
    assert (report["val"] is not None) == report["improved"]
    cache = RequestCache(out / "llm-cache.sqlite")
    size = len(cache)
    cache.close()
    again = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout == first.stdout
    cache = RequestCache(out / "llm-cache.sqlite")
    assert len(cache) == size  # nothing new was asked
    cache.close()
