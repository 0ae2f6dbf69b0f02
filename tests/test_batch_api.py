"""Batch mode from the Python API (issue 20): a job takes ``batch=``, ``jobs.batch_collect`` continues it.

No ambient state carries the mode: a runner built without ``batch=`` sends live even while
another job's batch run is open, and the collect continues the recorded job (its settings
from ``batch.json``, paths absolute, no key) from any working directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jsonlines
import pytest

from llm_aug import jobs
from llm_aug.llm import build_runner
from llm_aug.llm.batch import BatchDeferred, BatchMode, JobCall, load_manifest
from llm_aug.llm.config import API_KEY_ENV
from llm_server import LLMServer

CANARY = "sk-batch-api-canary-987654321"
PACKAGE = Path(__file__).resolve().parents[1] / "llm_aug"


def _reply(body: dict, index: int) -> str:
    return f"等级：{len(body['messages'][-1]['content']) % 11}"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    for name in API_KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)


def _llm(url: str, cache: Path) -> dict:
    return {"backend": {"kind": "openai", "model": "m", "base_url": url},
            "runner": {"cache_path": str(cache), "quiet": True}}


def _answer(srv: LLMServer, run: Path, files: list[str], out: Path) -> Path:
    """What ``vllm run-batch -o`` would write for the run's request files, answered by the server."""
    return srv.answer_batch_files([run / name for name in files], out)


def test_classify_batch_then_collect_from_python_equals_the_live_run(tmp_path, demo_dir):
    live_out, out, run = tmp_path / "live" / "p.jsonl", tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with LLMServer(reply=_reply) as srv:
        live = jobs.classify("fine", demo_dir / "val.tsv", live_out, llm=_llm(srv.url, tmp_path / "l.sqlite"))
        sent = srv.request_count
        with pytest.raises(BatchDeferred) as deferred:
            jobs.classify("fine", demo_dir / "val.tsv", out, llm=_llm(srv.url, tmp_path / "b.sqlite"),
                          batch=BatchMode("export", run))
        assert srv.request_count == sent and not out.exists()
        results = _answer(srv, run, deferred.value.files, tmp_path / "results.jsonl")
        done = jobs.batch_collect(run, results=[results])
        assert srv.request_count == sent  # every answer came from the imported results
    assert done.deferred is None and done.job is not None and done.job.job == "classify"
    assert done.job_result.summary["requests_made"] == 0 and done.job_result.n_ok == live.n_ok
    assert list(jsonlines.open(out)) == list(jsonlines.open(live_out))
    again = jobs.batch_collect(run, results=[results])  # a second collect: nothing to do
    assert again.collected.nothing_to_do and again.job_result is None


def test_the_recorded_job_has_absolute_paths_and_no_key(tmp_path, demo_dir, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run = tmp_path / "work" / "run"
    with LLMServer(reply=_reply) as srv:
        with pytest.raises(BatchDeferred) as deferred:
            jobs.classify("fine", os.path.relpath(demo_dir / "val.tsv"), "out/p.jsonl",
                          llm=_llm(srv.url, Path("cache.sqlite")), batch=BatchMode("export", "run"))
        # collected from elsewhere: the recorded job still finds its files
        results = _answer(srv, run, deferred.value.files, tmp_path / "results.jsonl")
        monkeypatch.chdir(tmp_path)
        done = jobs.batch_collect(run, results=[results])
    text = (run / "batch.json").read_text(encoding="utf-8")
    assert CANARY not in text and "api_key" not in load_manifest(run).job.kwargs["llm"]["backend"]
    kwargs = load_manifest(run).job.kwargs
    assert Path(kwargs["input_file"]).is_absolute() and Path(kwargs["output"]).is_absolute()
    assert Path(kwargs["llm"]["runner"]["cache_path"]).is_absolute()
    assert done.job_result.output == tmp_path / "work" / "out" / "p.jsonl"
    assert done.job_result.n_ok > 0 and done.job_result.n_failed == 0


def test_a_runner_built_without_batch_sends_live_while_a_batch_run_is_open(tmp_path, demo_dir):
    with LLMServer(reply=_reply) as srv:
        with pytest.raises(BatchDeferred):
            jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "b" / "p.jsonl",
                          llm=_llm(srv.url, tmp_path / "b.sqlite"), batch=BatchMode("export", tmp_path / "run"))
        runner = build_runner(_llm(srv.url, tmp_path / "other.sqlite"))
        assert runner.dispatch is None
        result = jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "l" / "p.jsonl",
                               llm=_llm(srv.url, tmp_path / "other.sqlite"), runner=runner)
        assert result.summary["requests_made"] > 0 and srv.request_count > 0


def test_batch_and_runner_together_are_refused(tmp_path, demo_dir):
    runner = build_runner({"backend": {"kind": "fake"}})
    with pytest.raises(ValueError, match="batch= or runner="):
        jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "p.jsonl", llm={"backend": {"kind": "fake"}},
                      runner=runner, batch=BatchMode("export", tmp_path / "run"))


def test_batch_needs_the_openai_backend_from_python_too(tmp_path, demo_dir):
    with pytest.raises(Exception, match="--batch needs --backend openai"):
        jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "p.jsonl", llm={"backend": {"kind": "fake"}},
                      batch=BatchMode("export", tmp_path / "run"))


def test_job_call_drops_secrets_everywhere_and_refuses_non_json():
    from pydantic import SecretStr

    call = JobCall.of("classify", llm={"backend": {"api_key": "sk-x", "key": SecretStr("sk-y"), "n": 1}},
                      paths=[Path("a.tsv")])
    assert call.kwargs["llm"] == {"backend": {"n": 1}}
    assert call.kwargs["paths"] == [str(Path("a.tsv").resolve())]
    with pytest.raises(TypeError):
        JobCall.of("classify", when=object())


def test_no_context_variable_carries_a_mode_in_the_package():
    """The one ContextVar left is the aiohttp transport's per-request attempt, inside that module."""
    found = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if re.search(r"\bContextVar\(", p.read_text(encoding="utf-8"))}
    assert found == {"llm/transports/aiohttp_transport.py"}


def test_every_llm_job_takes_batch_and_batch_collect_can_continue_it():
    import inspect

    from llm_aug.jobs.batch import CONTINUABLE

    llm_jobs = {"classify": jobs.classify, "compare_prompts": jobs.compare_prompts, "run_augment": jobs.run_augment,
                "compare_matrix": jobs.compare_matrix, "optimize_prompt": jobs.optimize_prompt}
    assert all("batch" in inspect.signature(fn).parameters for fn in llm_jobs.values())
    assert set(CONTINUABLE) == set(llm_jobs)
