"""A real vLLM (CPU build) with a tiny random model: the plumbing, end to end. Opt-in.

Skipped unless ``vllm`` imports in the interpreter running pytest, so the default CI
run skips it. Run it from the venv that ``scripts/vllm_cpu_check.py`` makes::

    python scripts/vllm_cpu_check.py --only server        # creates the venv once
    ~/.cache/llm-aug/vllm-cpu-venv/bin/python -m pytest -m vllm tests/test_vllm_real.py

The model is built in a temporary folder (a 2-layer Qwen2, hidden 64, random weights,
BPE tokenizer trained on SOS-1K train): it answers nonsense, so these tests check that
requests are accepted, replies parsed or counted invalid, token counts recorded and
reruns served from the cache, not accuracy. Several minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed in this interpreter (opt-in: run "
                                   "scripts/vllm_cpu_check.py, then this module with its venv's python)")

pytestmark = [pytest.mark.vllm]

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("vllm_cpu_check", REPO / "scripts" / "vllm_cpu_check.py")
check = importlib.util.module_from_spec(_spec)
sys.modules["vllm_cpu_check"] = check
_spec.loader.exec_module(check)

PY = Path(sys.executable)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    if not (check.DATA / "train.tsv").is_file():
        pytest.skip(f"SOS-1K development copy not found at {check.DATA}")
    return tmp_path_factory.mktemp("vllm_real")


@pytest.fixture(scope="module")
def model_dir(work: Path) -> Path:
    out = work / "model"
    check.build_model(out, check.DATA / "train.tsv")
    return out


@pytest.fixture(scope="module")
def inputs(work: Path) -> tuple[Path, Path]:
    return check.prepare(work)


@pytest.fixture(scope="module")
def server(model_dir: Path, work: Path):
    with check.vllm_server(PY, model_dir, work / "server.log") as info:
        yield info


def backend_args(server: dict) -> list[str]:
    return ["--backend", "openai", "--base-url", server["url"], "--model", check.MODEL_NAME]


def classify(work: Path, posts: Path, name: str, backend: list[str], *extra: str) -> tuple[dict, Path]:
    out = work / name / "predictions.jsonl"
    proc = check.llm_aug(PY, *check.classify_args(posts, out, backend, *extra), cwd=work)
    return check.summary_of(proc), out


def test_tokenizer_round_trips_chinese(model_dir: Path) -> None:
    texts = check.read_texts(check.DATA / "val.tsv", check.N_POSTS)
    assert check.tokenizer_round_trips(model_dir, texts) == []


def test_classify_over_http_then_rerun_is_cached(server: dict, work: Path, inputs) -> None:
    posts, _ = inputs
    before = check.server_requests(server["port"])
    summary, out = classify(work, posts, "classify", backend_args(server))
    ok, detail, _, _ = check.check_predictions(out, check.N_POSTS)
    assert ok, detail
    assert summary["requests_made"] == check.N_POSTS and not summary["errors"]
    assert summary["prompt_tokens"] > 0 and summary["completion_tokens"] > 0
    assert check.server_requests(server["port"]) - before >= check.N_POSTS
    before = check.server_requests(server["port"])
    again, _ = classify(work, posts, "classify", backend_args(server))
    assert again["requests_made"] == 0
    assert check.server_requests(server["port"]) == before


def test_augment_over_http_then_rerun_is_cached(server: dict, work: Path, inputs) -> None:
    _, train = inputs
    out = work / "augment"
    args = ["augment", "--method", "llm", "--task", "fine", "--train", str(train),
            "--protect", str(check.DATA / "val.tsv"), "--balance", "3", "--max-requests-per-level", "1",
            "--max-tokens", "64", "--out", str(out), *backend_args(server)]
    proc = check.llm_aug(PY, *args, cwd=work)
    assert proc.returncode in (0, 3), proc.stderr[-2000:]  # 3: a random model fills no level
    usage = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["usage"]
    assert usage["requests_made"] > 0 and usage["completion_tokens"] > 0 and not usage["errors"]
    before = check.server_requests(server["port"])
    assert check.llm_aug(PY, *args, cwd=work).returncode in (0, 3)
    assert check.server_requests(server["port"]) == before


@pytest.mark.parametrize("mode", ["response_format", "structured_outputs"])
def test_structured_output_is_json(server: dict, work: Path, inputs, mode: str) -> None:
    posts, _ = inputs
    cfg = work / f"structured_{mode}.json"
    cfg.write_text(json.dumps({"backend": {"kind": "openai", "model": check.MODEL_NAME,
                                           "base_url": server["url"], "structured_output": mode}}))
    name = f"structured_{mode}"
    summary, out = classify(work, posts, name, ["--llm-config", str(cfg)], "--prompt", "classify/structured")
    assert summary["requests_made"] == check.N_POSTS and not summary["errors"]
    ok, detail = check.structured(lambda: (True, ""), work / name)()
    assert ok, detail


def test_score_labels_from_logprobs(server: dict, work: Path, inputs) -> None:
    posts, _ = inputs
    summary, out = classify(work, posts, "score", backend_args(server), "--prompt", "classify/structured",
                            "--score-labels")
    assert not summary["errors"]
    ok, detail = check.score_labels(lambda: (True, ""), work / "score")()
    assert ok, detail


def test_three_samples_per_post(server: dict, work: Path, inputs) -> None:
    posts, _ = inputs
    summary, out = classify(work, posts, "samples", backend_args(server), "--samples", "3")
    ok, detail, _, _ = check.check_predictions(out, check.N_POSTS, samples=3)
    assert ok, detail
    assert summary["requests_made"] == check.N_POSTS


def test_wire_format(server: dict) -> None:
    ok, detail = check.direct_probe(server["url"])()
    assert ok, detail


def test_in_process_engine(model_dir: Path, work: Path, inputs, request) -> None:
    # After the server tests (module order), so the two engines do not share 2 cores.
    posts, _ = inputs
    summary, out = classify(work, posts, "inprocess", ["--backend", "vllm", "--model", str(model_dir)])
    ok, detail, _, _ = check.check_predictions(out, check.N_POSTS)
    assert ok, detail
    assert summary["requests_made"] == check.N_POSTS and not summary["errors"]
    again, _ = classify(work, posts, "inprocess", ["--backend", "vllm", "--model", str(model_dir)])
    assert again["requests_made"] == 0
