"""Batch inference mode end to end: export, submit, status, collect, against loopback servers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
import pytest

from batch_server import BatchServer
from clirun import assert_ok, invoke
from llm_aug.core.errors import UserError
from llm_aug.llm.batch import ENDPOINT, load_manifest, save_manifest
from llm_aug.llm.batch.export import split_lines
from llm_aug.llm.cache import RequestCache
from llm_aug.llm.config import API_KEY_ENV
from llm_server import LLMServer

CANARY = "sk-batch-canary-0123456789"


def _reply(body: dict, index: int) -> str:
    return f"等级：{len(body['messages'][-1]['content']) % 11}"


def _classify(demo_dir: Path, out: Path, url: str, *extra: object) -> list[object]:
    return ["classify", "--task", "fine", "--input", demo_dir / "val.tsv", "--output", out,
            "--backend", "openai", "--base-url", url, "--model", "m", *extra]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    for name in API_KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)


@pytest.fixture
def live(tmp_path, demo_dir) -> Path:
    """Predictions of a plain live run against the same reply function."""
    out = tmp_path / "live" / "p.jsonl"
    with LLMServer(reply=_reply) as srv:
        assert_ok(invoke(*_classify(demo_dir, out, srv.url)))
    return out


def _rows(path: Path) -> list[dict]:
    return list(jsonlines.open(path))


def _assert_same_as_live(out: Path, live: Path) -> None:
    assert _rows(out) == _rows(live)
    raw = out.with_name(out.stem + ".raw.jsonl")
    live_raw = live.with_name(live.stem + ".raw.jsonl")
    if raw.exists() and live_raw.exists():
        assert _rows(raw) == _rows(live_raw)


def _cache_size(run_dir: Path) -> int:
    cache = RequestCache(load_manifest(run_dir).cache_path)
    try:
        return len(cache)
    finally:
        cache.close()


def _no_canary(run_dir: Path) -> None:
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert CANARY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_split_respects_request_and_byte_limits():
    lines = ["x" * 9] * 7  # 10 bytes each with the newline
    assert [len(g) for g in split_lines(lines, 3, 1000)] == [3, 3, 1]
    assert [len(g) for g in split_lines(lines, 100, 25)] == [2, 2, 2, 1]
    with pytest.raises(UserError):
        split_lines(["y" * 50], 10, 20)


def test_export_writes_live_identical_requests_split_at_the_limit(tmp_path, demo_dir):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with LLMServer(reply=_reply, record=True) as srv:
        live_out = tmp_path / "l" / "p.jsonl"
        assert_ok(invoke(*_classify(demo_dir, live_out, srv.url)))
        live_bodies = sorted(json.dumps(b, sort_keys=True) for _, b in srv.recorded)
        made = srv.request_count
        result = assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "export",
                                             "--batch-dir", run, "--batch-max-requests", 10)))
        assert srv.request_count == made  # nothing sent
    info = json.loads(result.stdout)["batch"]
    lines = [json.loads(line) for name in info["files"] for line in (run / name).read_text().splitlines()]
    assert info["requests"] == len(lines) == len(live_bodies)
    assert [len((run / n).read_text().splitlines()) for n in info["files"]] == [10, 10, 10, len(lines) - 30]
    assert all(set(x) == {"custom_id", "method", "url", "body"} and x["method"] == "POST"
               and x["url"] == ENDPOINT for x in lines)
    assert len({x["custom_id"] for x in lines}) == len(lines)
    assert sorted(json.dumps(x["body"], sort_keys=True) for x in lines) == live_bodies
    assert not out.exists()  # nothing half-written in the outputs
    manifest = load_manifest(run)
    assert manifest.command[0] == "classify" and "--batch" not in manifest.command
    assert "vllm run-batch" in result.stderr
    _no_canary(run)


def test_submit_status_collect_round_trip_equals_live_run(tmp_path, demo_dir, live):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with BatchServer(reply=_reply, in_progress_polls=2) as srv:
        info = json.loads(assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "submit",
                                                      "--batch-dir", run, "--batch-max-requests", 20))).stdout)
        assert info["batch"]["submitted"] and len(srv.batches) == 2
        status = assert_ok(invoke("batch", "status", run)).stdout
        assert status.count("in_progress") == 2 and "batch_" in status
        waiting = assert_ok(invoke("batch", "collect", run))  # second poll: still in progress
        assert "waiting for" in waiting.stderr and not out.exists()
        done = assert_ok(invoke("batch", "collect", run))
        assert json.loads(done.stdout)["requests_made"] == 0  # the rerun found every answer cached
        assert srv.chat_requests == 0
        _assert_same_as_live(out, live)
        assert set(srv.auth_headers) == {f"Bearer {CANARY}"}
        usage = json.loads(live.with_name("p.manifest.json").read_text())["usage"]
        spent = load_manifest(run).cycles[0].imported
        assert (spent["prompt_tokens"], spent["completion_tokens"]) == (
            usage["prompt_tokens"], usage["completion_tokens"])
        before = out.read_bytes(), _cache_size(run)
        again = assert_ok(invoke("batch", "collect", run))
        assert "nothing to collect" in again.stderr
        assert (out.read_bytes(), _cache_size(run)) == before
    _no_canary(run)


def test_failed_lines_are_resubmitted_as_a_new_cycle(tmp_path, demo_dir, live):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    failed_once: set[str] = set()

    def fail_first_three(line: dict) -> bool:
        if len(failed_once) < 3 and line["custom_id"] not in failed_once:
            failed_once.add(line["custom_id"])
            return True
        return False

    with BatchServer(reply=_reply, fail=fail_first_three) as srv:
        assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "submit", "--batch-dir", run)))
        first = assert_ok(invoke("batch", "collect", run))
        assert "failed=3" in first.stderr
        manifest = load_manifest(run)
        assert [c.n_requests for c in manifest.cycles][1:] == [3]  # the rerun resubmitted them
        assert json.loads(first.stdout)["batch"]["requests"] == 3 and not out.exists()
        assert_ok(invoke("batch", "collect", run))
        assert srv.chat_requests == 0
    _assert_same_as_live(out, live)


def test_failed_lines_are_sent_live_with_collect_live(tmp_path, demo_dir, live):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    ids: list[str] = []

    def fail_two(line: dict) -> bool:
        ids.append(line["custom_id"])
        return len(ids) <= 2

    with BatchServer(reply=_reply, fail=fail_two) as srv:
        assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "submit", "--batch-dir", run)))
        result = assert_ok(invoke("batch", "collect", run, "--live"))
        assert srv.chat_requests == 2 and json.loads(result.stdout)["requests_made"] == 2
    _assert_same_as_live(out, live)


def test_collect_local_vllm_results_file(tmp_path, demo_dir, live):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with LLMServer(reply=_reply) as srv:
        info = json.loads(assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "export",
                                                      "--batch-dir", run))).stdout)["batch"]
        requests = [json.loads(x) for x in (run / info["files"][0]).read_text().splitlines()]
        # What `vllm run-batch -o` writes: one output line per request, here one an error.
        lines = [{"id": f"vllm-{i}", "custom_id": r["custom_id"], "error": None,
                  "response": {"status_code": 200, "request_id": f"r{i}",
                               "body": srv._completion(r["body"])}} for i, r in enumerate(requests[1:])]
        lines.append({"id": "vllm-x", "custom_id": requests[0]["custom_id"], "response": None,
                      "error": {"code": "oom", "message": "out of memory"}})
        lines.append({"id": "vllm-y", "custom_id": "not-ours", "response": None, "error": None})
        results = tmp_path / "results.jsonl"
        results.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
        made = srv.request_count
        first = assert_ok(invoke("batch", "collect", run, "--results", results))
        assert "failed=1" in first.stderr and "unknown_lines=1" in first.stderr
        assert json.loads(first.stdout)["batch"]["requests"] == 1  # the failed one, exported again
        assert (run / "requests-c2-001.jsonl").exists() and not out.exists()
        again = assert_ok(invoke("batch", "collect", run, "--results", results))  # cycle 1's file
        assert "already imported" in again.stderr and not (run / "requests-c3-001.jsonl").exists()
        assert load_manifest(run).open_cycle.index == 2 and srv.request_count == made
        empty = tmp_path / "empty.jsonl"
        empty.write_text("")
        mixed = invoke("batch", "collect", run, "--results", results, "--results", empty)
        assert isinstance(mixed.exception, UserError) and "already imported in cycle 1" in str(mixed.exception)
        assert_ok(invoke("batch", "collect", run, "--live"))  # cycle 2 closed unanswered, sent live
        assert srv.request_count == made + 1
    _assert_same_as_live(out, live)


def test_remote_url_needs_allow_remote(tmp_path, demo_dir):
    run = tmp_path / "run"
    result = invoke(*_classify(demo_dir, tmp_path / "p.jsonl", "https://8.8.8.8/v1", "--batch", "submit",
                               "--batch-dir", run))
    assert isinstance(result.exception, UserError) and "allow-remote" in str(result.exception)
    assert not (run / "batch.json").exists()
    # A run dir whose server is remote: status and collect need --allow-remote too.
    assert_ok(invoke(*_classify(demo_dir, tmp_path / "p.jsonl", "http://127.0.0.1:9/v1", "--batch",
                                "export", "--batch-dir", run)))
    manifest = load_manifest(run)
    manifest.base_url, manifest.cycles[0].files[0].batch_id = "https://8.8.8.8/v1", "batch_x"
    save_manifest(run, manifest)
    for command in ("status", "collect"):
        result = invoke("batch", command, run)
        assert isinstance(result.exception, UserError) and "allow-remote" in str(result.exception)


def test_batch_needs_the_openai_backend(tmp_path, demo_dir):
    result = invoke("classify", "--task", "fine", "--input", demo_dir / "val.tsv", "--output",
                    tmp_path / "p.jsonl", "--backend", "fake", "--batch", "export")
    assert isinstance(result.exception, UserError) and "--backend openai" in str(result.exception)
    result = invoke(*_classify(demo_dir, tmp_path / "p.jsonl", "http://127.0.0.1:9/v1", "--batch", "later"))
    assert isinstance(result.exception, UserError) and "export or submit" in str(result.exception)


def _collect_until_done(run: Path, limit: int = 12) -> int:
    """Collect (each rerun defers the next round as a new cycle) until nothing is left; cycles seen."""
    for _ in range(limit):
        result = assert_ok(invoke("batch", "collect", run))
        if "nothing to collect" in result.stderr:
            return len(load_manifest(run).cycles)
    raise AssertionError("batch cycles did not finish")


def test_prompt_compare_runs_one_cycle_per_prompt_and_equals_live(tmp_path, demo_dir):
    args = ["prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task", "fine",
            "--input", demo_dir / "val.tsv", "--n-boot", 50, "--backend", "openai", "--model", "m"]
    with LLMServer(reply=_reply) as srv:
        assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "live"))
    run = tmp_path / "run"
    with BatchServer(reply=_reply) as srv:
        assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "b", "--batch", "submit",
                         "--batch-dir", run))
        assert _collect_until_done(run) == 2  # prompt B's requests exist only once A is done
        assert srv.chat_requests == 0
    for name in ("flips.jsonl", "prompt_compare.json"):
        text = (tmp_path / "b" / name).read_text().replace(str(tmp_path / "b"), "OUT")
        assert text == (tmp_path / "live" / name).read_text().replace(str(tmp_path / "live"), "OUT")


def test_augment_rounds_become_batch_cycles_with_the_live_corpus(tmp_path):
    from test_augment_pipeline import TRAIN, VAL, _server_reply

    args = ["augment", "--method", "llm", "--task", "fine", "--train", TRAIN, "--protect", VAL,
            "--balance", "10", "--posts-per-request", "3", "--backend", "openai", "--model", "m"]
    with LLMServer(reply=_server_reply({})) as srv:
        assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "live"))
    run = tmp_path / "run"
    with BatchServer(reply=_server_reply({})) as srv:
        assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "b", "--batch", "submit",
                         "--batch-dir", run))
        assert not (tmp_path / "b" / "corpus.tsv").exists()
        assert _collect_until_done(run) >= 2  # later rounds depend on earlier ones
        assert srv.chat_requests == 0
    assert (tmp_path / "b" / "corpus.tsv").read_bytes() == (tmp_path / "live" / "corpus.tsv").read_bytes()


def test_submit_after_export_uploads_the_same_cycle(tmp_path, demo_dir, live):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with BatchServer(reply=_reply) as srv:
        args = _classify(demo_dir, out, srv.url, "--batch-dir", run)
        assert_ok(invoke(*args, "--batch", "export"))
        exported = (run / "requests-c1-001.jsonl").read_bytes()
        collect = invoke("batch", "collect", run)  # neither submitted nor given results
        assert isinstance(collect.exception, UserError) and "--results" in str(collect.exception)
        assert_ok(invoke(*args, "--batch", "submit"))
        manifest = load_manifest(run)
        assert len(manifest.cycles) == 1 and manifest.cycles[0].files[0].batch_id in srv.batches
        assert list(srv.files.values())[0] == exported
        assert_ok(invoke("batch", "collect", run))
    _assert_same_as_live(out, live)


def test_two_different_answers_for_one_custom_id_stop_the_collect(tmp_path, demo_dir):
    out, run = tmp_path / "b" / "p.jsonl", tmp_path / "run"
    with LLMServer(reply=_reply) as srv:
        info = json.loads(assert_ok(invoke(*_classify(demo_dir, out, srv.url, "--batch", "export",
                                                      "--batch-dir", run))).stdout)["batch"]
        requests = [json.loads(x) for x in (run / info["files"][0]).read_text().splitlines()]

        def line(request: dict, text: str | None = None) -> str:
            body = srv._completion(request["body"])
            if text is not None:
                body["choices"][0]["message"]["content"] = text
            return json.dumps({"custom_id": request["custom_id"],
                               "response": {"status_code": 200, "body": body}}, ensure_ascii=False)
        first = requests[0]
        results = tmp_path / "results.jsonl"
        results.write_text("\n".join([line(r) for r in requests] + [line(first, "等级：9")]) + "\n")
        res = invoke("batch", "collect", run, "--results", results)
        assert isinstance(res.exception, UserError), (res.stderr, res.exception)
        message = str(res.exception)
        assert first["custom_id"] in message and f"line {len(requests) + 1}" in message
        assert _cache_size(run) == 0 and load_manifest(run).open_cycle.index == 1  # nothing imported
        # The same answer twice is not a conflict: counted, and the collect goes through.
        results.write_text("\n".join([line(r) for r in requests] + [line(first)]) + "\n")
        again = assert_ok(invoke("batch", "collect", run, "--results", results, "--no-rerun"))
        assert f"ok={len(requests)} failed=0" in again.stderr and "repeated_lines=1" in again.stderr
