"""The real offline model (Qwen2.5-Coder-0.5B GGUF via llama.cpp) through classify and prompts compare.

Slow; CI runs it. It checks the plumbing with a real model (every row answered or
recorded, parse results valid, provenance present), not the model's quality: it is a
smoke-test model and scores near chance.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jsonlines
import pytest

from conftest import write

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")


def _cli(*args, timeout=900):
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-q", *map(str, args)],
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


@pytest.fixture(scope="module")
def val20(tmp_path_factory, sos1k_dir_module):
    lines = (sos1k_dir_module / "fine" / "val.tsv").read_text(encoding="utf-8").splitlines()
    return write(tmp_path_factory.mktemp("val") / "val20.tsv", "\n".join(lines[:21]) + "\n")


@pytest.fixture(scope="module")
def sos1k_dir_module():
    from conftest import SOS1K

    if not (SOS1K / "fine" / "val.tsv").is_file():
        pytest.skip("SOS-1K development copy not found")
    return SOS1K


def _check_predictions(path, n):
    rows = list(jsonlines.open(path))
    assert len(rows) == n and len({r["id"] for r in rows}) == n
    for r in rows:
        assert r["pred"] is None or 0 <= r["pred"] <= 10
        assert r["error"] is not None or isinstance(r["raw"], str)
        assert r["model"] and r["prompt_sha256"]
    return rows


def test_zero_and_three_shot_classification_with_local_model(tmp_path, val20, sos1k_dir_module):
    common = ["--task", "fine", "--input", val20, "--backend", "llamacpp", "--model", "test",
              "--max-tokens", "16", "--concurrency", "1"]
    _cli("classify", *common, "--output", tmp_path / "zs.jsonl")
    _check_predictions(tmp_path / "zs.jsonl", 20)
    _cli("classify", *common, "--output", tmp_path / "fs.jsonl", "--shots", "3",
         "--train", sos1k_dir_module / "fine" / "train.tsv")
    rows = _check_predictions(tmp_path / "fs.jsonl", 20)
    assert all(len(r["exemplar_ids"]) == 3 for r in rows)
    res = _cli("evaluate", tmp_path / "fs.jsonl", "--gold", val20, "--json", "--n-boot", "100")
    metrics = json.loads(res.stdout)
    assert metrics["n"] == 20 and 0 <= metrics["invalid_rate"] <= 1


def test_prompt_compare_with_local_model(tmp_path, val20):
    res = _cli("prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task", "fine",
               "--input", val20, "--out", tmp_path / "cmp", "--backend", "llamacpp", "--model", "test",
               "--max-tokens", "16", "--concurrency", "1", "--n-boot", "100")
    assert "B - A" in res.stdout
    report = json.loads((tmp_path / "cmp" / "prompt_compare.json").read_text())
    assert report["n"] == 20
    flips = list(jsonlines.open(tmp_path / "cmp" / "flips.jsonl"))
    assert len(flips) == report["flips"]
