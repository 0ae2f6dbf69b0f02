"""prompts optimize: a task built so that one exemplar is what the model needs (issue 22, search)."""

from __future__ import annotations

import json
import re
import sys

import pytest

from clirun import assert_ok, invoke
from conftest import write
from llm_aug.core.errors import UserError
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.jobs import optimize_prompt as optimize_api
from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.prompting import load_prompt
from llm_aug.prompting.classify import ClassifyConfig, classify_dataset
from llm_server import LLMServer

MAGIC = "帖子3 钥匙"  # the one exemplar that makes the model right
DECOY = "帖子9"


def _texts(n: int, start: int) -> list[tuple[str, int]]:
    rows = []
    for i in range(start, start + n):
        text = MAGIC if i == 3 else f"帖子{i}"
        rows.append((text, i % 2))
    return rows


def _tsv(path, rows):
    return write(path, "comment\tmyLabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))


@pytest.fixture
def task(tmp_path):
    """30 train posts (labels 0/1), 40 val posts; zero-shot the model answers 0, except on
    two label-1 train posts (MAGIC, DECOY); with MAGIC among the exemplars it is right on all."""
    train, val = _texts(30, 0), _texts(40, 100)
    gold = dict(train + val)
    easy = {MAGIC, DECOY}

    def reply(request, index):
        content = request.messages[-1].content
        post = content.split("<post>")[-1].split("</post>")[0].strip()
        knows = MAGIC in content.split("<post>")[0]
        return f"等级：{gold[post] if knows or post in easy else 0}"
    return {"train": _tsv(tmp_path / "train.tsv", train), "val": _tsv(tmp_path / "val.tsv", val),
            "reply": reply, "n_train": len(train), "n_val": len(val)}


def _runner(backend, tmp_path):
    return Runner(backend, RunnerConfig(cache_path=tmp_path / "cache.sqlite", quiet=True))


def _run(task, tmp_path, backend, **kw):
    args = {"llm": {"backend": {"kind": "fake"}}, "budget": 400, "out": tmp_path / "opt",
            "candidates": 4, "shots": 2, "n_boot": 300, **kw}
    return optimize_api("classify/fewshot.v1", "binary", task["train"], task["val"],
                        runner=_runner(backend, tmp_path), **args)


def test_finds_the_exemplar_and_confirms_it_paired_on_val(task, tmp_path):
    backend = FakeBackend(task["reply"])
    result = _run(task, tmp_path, backend)
    assert result.improved and result.pool == 17  # every label-0 post, MAGIC and DECOY
    best = next(c for c in result.candidates if c.id == result.winner)
    magic_id = next(r.id for r in load_dataset(task["train"], scheme_for_task("binary")).rows if r.text == MAGIC)
    assert best.cv_score == 1.0 and magic_id in best.exemplar_ids
    base = result.candidates[0]
    assert base.id == "base" and base.cv_score < 0.8
    # a set with the magic exemplar scores 1, every other like the base: the draw had both
    assert {c.cv_score == 1.0 for c in result.candidates[1:]} == {True, False}
    assert all((c.cv_score == 1.0) == (magic_id in c.exemplar_ids) for c in result.candidates[1:])
    val = result.val
    assert val.n == task["n_val"] and val.winner == 1.0 and val.delta > 0.3
    assert val.ci[0] > 0 and val.p_value < 0.05 and set(val.deltas) >= {"accuracy", "macro_f1"}
    assert backend.calls == result.requests_spent <= 400
    # the winner is a prompt file of its own: exemplars fixed, ids in the front matter
    prompt = load_prompt(str(result.prompt_file))
    assert result.prompt_file.name == "fewshot.v2.jinja" and prompt.meta["exemplar_ids"] == best.exemplar_ids
    assert prompt.meta["optimized"]["from"] == "classify/fewshot.v1"
    text = "\n".join(m.content for m in prompt.render(scheme=scheme_for_task("binary"), post="x"))
    assert MAGIC in text
    # classify with the written prompt sends the val check's requests again: all cached
    again = FakeBackend(task["reply"])
    val = load_dataset(task["val"], scheme_for_task("binary"))
    summary = classify_dataset(val, scheme_for_task("binary"), _runner(again, tmp_path),
                               ClassifyConfig(prompt=str(result.prompt_file)), tmp_path / "winner.jsonl")
    assert again.calls == 0 and summary.n_cached == len(val.rows)
    report = json.loads((tmp_path / "opt" / "report.json").read_text())
    assert report["winner"] == result.winner and len(report["candidates"]) == len(result.candidates)
    assert "| base |" in (tmp_path / "opt" / "report.md").read_text()
    assert (tmp_path / "opt" / "manifest.json").is_file()


def test_reads_train_and_val_only(task, tmp_path, monkeypatch):
    mod = sys.modules["llm_aug.jobs.optimize_prompt"]  # the package attribute is the function
    read = []
    real = mod.load_dataset
    monkeypatch.setattr(mod, "load_dataset", lambda path, *a, **k: read.append(str(path)) or real(path, *a, **k))
    write(tmp_path / "test.tsv", "not a data file")  # beside them: never opened
    _run(task, tmp_path, FakeBackend(task["reply"]))
    assert read == [str(task["train"]), str(task["val"])]


def test_budget_stops_adding_candidates(task, tmp_path):
    backend = FakeBackend(task["reply"])
    # base on train (30) + val reserve (40 + 40) + one candidate (28) fits; a second does not
    result = _run(task, tmp_path, backend, budget=30 + 80 + 28 + 10)
    assert len(result.candidates) == 2 and result.skipped == 3
    assert backend.calls == result.requests_spent <= 30 + 80 + 28 + 10
    with pytest.raises(UserError, match="maximises"):
        _run(task, tmp_path / "mae", FakeBackend(task["reply"]), metric="mae")
    with pytest.raises(UserError, match="too small"):
        _run(task, tmp_path / "small", FakeBackend(task["reply"]), budget=100)


def test_rerun_after_a_crash_sends_no_request_twice(task, tmp_path):
    crash = FakeBackend(task["reply"], failures=lambda req, n: KeyboardInterrupt() if n == 45 else None)
    with pytest.raises(KeyboardInterrupt):
        _run(task, tmp_path, crash)
    again = FakeBackend(task["reply"])
    result = _run(task, tmp_path, again)
    first = {json.dumps([m.content for m in r.messages]) for r in crash.seen[:45]}
    second = [json.dumps([m.content for m in r.messages]) for r in again.seen]
    assert not first & set(second) and len(second) == len(set(second))
    clean = FakeBackend(task["reply"])
    _run(task, tmp_path / "clean", clean)
    assert 45 + again.calls == clean.calls and result.improved
    third = FakeBackend(task["reply"])
    assert _run(task, tmp_path, third).winner == result.winner and third.calls == 0


def test_cli_against_the_loopback_server(task, tmp_path):
    with LLMServer(reply=_server_reply(task)) as srv:
        args = ["prompts", "optimize", "classify/fewshot.v1", "--task", "binary", "--train", task["train"],
                "--val", task["val"], "--budget", 300, "--out", tmp_path / "cli", "--candidates", 3,
                "--shots", 2, "--n-boot", 200, "--backend", "openai", "--base-url", srv.url, "--model", "m"]
        first = assert_ok(invoke(*args))
        made = srv.request_count
        assert 0 < made <= 300 and "val check" in first.stdout
        assert_ok(invoke(*args))
        assert srv.request_count == made
    assert re.search(r"winner written to .*fewshot\.v2\.jinja", first.stdout)


def _server_reply(task):
    def reply(body, index):
        class _Req:  # the fake's reply reads request.messages[-1].content
            messages = [type("M", (), {"content": body["messages"][-1]["content"]})]
        return task["reply"](_Req, index)
    return reply


def test_batch_mode_stops_at_each_round_and_collect_finishes_as_live(task, tmp_path, monkeypatch):
    from batch_server import BatchServer
    from llm_aug.llm.batch import load_manifest
    from llm_aug.llm.config import API_KEY_ENV

    for name in API_KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    args = ["prompts", "optimize", "classify/fewshot.v1", "--task", "binary", "--train", task["train"],
            "--val", task["val"], "--budget", 300, "--candidates", 3, "--shots", 2, "--n-boot", 200,
            "--backend", "openai", "--model", "m"]
    with LLMServer(reply=_server_reply(task)) as srv:
        assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "live"))
    run = tmp_path / "run"
    with BatchServer(reply=_server_reply(task)) as srv:
        first = assert_ok(invoke(*args, "--base-url", srv.url, "--out", tmp_path / "b", "--batch", "submit",
                                 "--batch-dir", run))
        assert json.loads(first.stdout)["batch"]["requests"] == task["n_train"]  # round 1: the base on train
        outputs = [assert_ok(invoke("batch", "collect", run)) for _ in range(3)]
        assert srv.chat_requests == 0
    assert len(load_manifest(run).cycles) == 3  # bootstrap, candidates, val check
    assert "val check" in outputs[-1].stdout
    live, batch = (json.loads((tmp_path / d / "report.json").read_text().replace(str(tmp_path / d), "OUT"))
                   for d in ("live", "b"))
    assert batch == live and live["improved"]


def test_instruction_variants_are_candidates_too(task, tmp_path):
    source = load_prompt("classify/fewshot.v1").info.path.read_text("utf-8")
    write(tmp_path / "variants" / "classify" / "hint.v1.jinja", source.replace("已标注的示例：", f"已标注的示例（{MAGIC}）："))
    result = _run(task, tmp_path, FakeBackend(task["reply"]), variants=tmp_path / "variants", candidates=2)
    templates = [c.template for c in result.candidates]
    assert templates[:2] == ["classify/fewshot.v1", "classify/hint.v1"] and templates.count("classify/hint.v1") == 3
    best = next(c for c in result.candidates if c.id == result.winner)
    assert best.template == "classify/hint.v1" and best.exemplar_ids == [] and best.cv_score == 1.0
    assert load_prompt(str(result.prompt_file)).meta["optimized"]["template"] == "classify/hint.v1"


def test_a_model_that_labels_nothing_right_still_gets_labelled_exemplar_sets(task, tmp_path):
    result = _run(task, tmp_path, FakeBackend(lambda req, i: "等级：7"), candidates=3)
    assert result.pool == 0 and len(result.candidates) == 4
    assert all(len(c.exemplar_ids) == 2 for c in result.candidates[1:]) and not result.improved
    assert result.val is None and result.prompt_file is None
