"""The augment pipeline end to end with scripted backends: balance, filters, refusal to pad, resume."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jsonlines
import pytest
from typer.testing import Result

from clirun import invoke
from conftest import DEMO, write
from llm_aug.core.errors import UserError
from llm_aug.data.io import load_dataset
from llm_aug.eval.render import FONT_STACK
from llm_aug.jobs.augment import EXIT_SHORT, AugmentConfig, run_augment
from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_server import LLMServer

TRAIN, VAL = DEMO / "train.tsv", DEMO / "val.tsv"
# Plain characters only: no digits, no advice or chat words, so only the length,
# similarity and label filters can object to a random post made of them.
_POOL = "天地山水风云花草木日月星辰春夏秋冬东南西北红黄蓝绿鱼鸟虫马牛羊猫狗桌椅门窗书纸墨茶饭菜米面河湖海岛林田路桥城村楼房衣帽鞋伞灯镜钟琴棋画歌舞"
ENGLISH = "so tired of it all, bye."
ASSISTANT = "作为AI助手我想说相信自己相信自己相信自己"


def random_post(key: str) -> str:
    """A 22-character post, a deterministic function of ``key``."""
    rng = random.Random(key)
    chars = [rng.choice(_POOL) for _ in range(20)]
    return "".join(chars[:10]) + "，" + "".join(chars[10:]) + "。"


def exemplars_of(text: str) -> list[str]:
    return re.findall(r"<example>\n(.*?)\n</example>", text, re.DOTALL)


def level_of(text: str) -> int:
    return int(re.search(r"目标等级：(\d+)级", text).group(1))


def mixed_reply(prompt: str, key: str, n_good: int = 2) -> str:
    """n good posts plus one of each kind the filters must reject."""
    train = load_dataset(TRAIN).texts
    val = load_dataset(VAL).texts
    bad = [train[level_of(prompt) % len(train)],        # exact duplicate of a training post
           exemplars_of(prompt)[0] + "啊",               # a copied exemplar
           val[len(key) % len(val)],                      # a leaked val post
           ENGLISH, ASSISTANT]
    return json.dumps([random_post(f"{key}:{i}") for i in range(n_good)] + bad, ensure_ascii=False)


def _last_user(request) -> str:
    return request.messages[-1].content


def fake_runner(reply, tmp_path: Path, **kw) -> Runner:
    backend = FakeBackend(lambda req, i: reply(_last_user(req), req.id), **kw)
    return Runner(backend, RunnerConfig(quiet=True, cache_path=tmp_path / "cache.sqlite"))


def config(tmp_path: Path, **kw) -> AugmentConfig:
    base = dict(method="llm", task="fine", train=TRAIN, out=tmp_path / "out", balance="11",
                protect=[VAL], posts_per_request=5, shots=3)
    return AugmentConfig(**{**base, **kw})


def test_llm_augment_balances_exactly_after_filtering(tmp_path):
    runner = fake_runner(mixed_reply, tmp_path)
    result = run_augment(config(tmp_path), runner=runner)
    assert result.exit_code == 0 and result.rounds == 2  # 4 good in round 0, 1 short -> round 1
    corpus = load_dataset(tmp_path / "out" / "corpus.tsv")
    assert Counter(corpus.labels) == {lv: 11 for lv in range(11)}
    assert not set(corpus.texts) & set(load_dataset(VAL).texts)
    rows = list(jsonlines.open(tmp_path / "out" / "corpus.jsonl"))
    synth = [r for r in rows if r["synthetic"]]
    assert len(synth) == 55 and len(rows) == 66 + 55
    for r in synth:
        assert r["method"] == "llm" and r["model"] == "fake" and r["seed"] is not None
        assert r["prompt"]["name"] == "generate/level_json.v2" and len(r["prompt"]["sha"]) == 64
        assert len(r["exemplar_ids"]) == 3 and r["text"] in corpus.texts
    rejected = {r["text"]: r["rejected_by"] for r in jsonlines.open(tmp_path / "out" / "rejected.jsonl")}
    assert rejected[ENGLISH] == "language" and rejected[ASSISTANT] == "boilerplate"
    by_filter = Counter(rejected.values())
    assert by_filter["leakage"] and by_filter["exact_dup"] and by_filter["exemplar_copy"]
    assert by_filter["surplus"] == 11  # 6 good posts per level, 5 needed: trimmed, not kept
    assert result.rejections["surplus"] == 11


def test_outputs_report_and_manifest(tmp_path):
    result = run_augment(config(tmp_path), runner=fake_runner(mixed_reply, tmp_path))
    out = tmp_path / "out"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "All levels reached their targets" in report and "| leakage |" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<table>" in page and "All levels reached their targets" in page and FONT_STACK in page
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["prompt"]["name"] == "generate/level_json.v2"
    assert manifest["usage"]["model"] == "fake" and manifest["usage"]["prompt_tokens"] > 0
    assert set(manifest["data_files"]) == {str(TRAIN), str(VAL)}
    assert manifest["result"]["shortfall"] == {} and result.usage["requests_made"] == 33
    assert json.loads((out / "plan.json").read_text())["levels"][0]["need"] == 5


def test_first_accepted_in_request_order_and_rerun_identical(tmp_path):
    run_augment(config(tmp_path), runner=fake_runner(mixed_reply, tmp_path))
    first = (tmp_path / "out" / "corpus.tsv").read_bytes()
    kept = [r for r in jsonlines.open(tmp_path / "out" / "corpus.jsonl") if r["synthetic"]]
    level0 = [r["text"] for r in kept if r["label"] == 0]
    assert level0[:4] == [random_post("L0-r0-0:0"), random_post("L0-r0-0:1"),
                          random_post("L0-r0-1:0"), random_post("L0-r0-1:1")]
    runner = fake_runner(mixed_reply, tmp_path)
    run_augment(config(tmp_path), runner=runner)  # everything resumed: no calls
    assert runner.backend.calls == 0
    assert (tmp_path / "out" / "corpus.tsv").read_bytes() == first


def test_label_filter_rejects_a_mislabelled_post(tmp_path):
    wrong = "我今天去公园散步看见湖里的鸭子，心情还不错。"

    def reply(prompt: str, key: str) -> str:
        posts = json.loads(mixed_reply(prompt, key))
        return json.dumps(posts + ([wrong] if key == "L9-r0-0" else []), ensure_ascii=False)

    truth: dict[str, int] = {}

    def relabel(texts: list[str]) -> list[int | None]:
        return [0 if t == wrong else truth.get(t, 9) for t in texts]

    for lv in range(11):
        for k in range(4):
            for i in range(2):
                truth[random_post(f"L{lv}-r{k // 2}-{k % 2}:{i}")] = lv
    run_augment(config(tmp_path), runner=fake_runner(reply, tmp_path), relabel=relabel)
    rejected = {r["text"]: r for r in jsonlines.open(tmp_path / "out" / "rejected.jsonl")}
    assert rejected[wrong]["rejected_by"] == "label"
    assert "relabelled 0, target 9" in rejected[wrong]["reject_reason"]
    assert wrong not in load_dataset(tmp_path / "out" / "corpus.tsv").texts


@pytest.mark.parametrize("method,n_requests", [("llm", 22), ("backtranslate", 88)])
def test_dry_run_plans_and_calls_nothing(tmp_path, method, n_requests):
    runner = fake_runner(mixed_reply, tmp_path)
    shown: list[str] = []
    result = run_augment(config(tmp_path, method=method, dry_run=True), runner=runner, on_plan=shown.append)
    assert runner.backend.calls == 0 and result.dry_run.n_requests == n_requests
    plan = (tmp_path / "out" / "plan.md").read_text()
    assert shown == [plan] and ("| 3 | 6 | 5 | 8 | 2 |" in plan if method == "llm" else "| 3 | 6 | 5 | 8 | 8 |" in plan)
    assert not (tmp_path / "out" / "corpus.tsv").exists()


def _cli(*args, check: int | None = 0) -> Result:
    """``llm-aug -q ARGS`` in this process; ``check`` is the exit code to expect (None: any)."""
    res = invoke(*args)
    if check is not None:
        assert res.exit_code == check, (res.stderr[-3000:], res.exception)
    return res


def _cli_process(*args) -> subprocess.CompletedProcess:
    """``python -m llm_aug -q ARGS`` in a new process (for the resume-after-kill test)."""
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-q", *map(str, args)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_refuses_to_pad_a_level_it_cannot_fill(tmp_path):
    train = load_dataset(TRAIN).texts
    replies = write(tmp_path / "replies.json", json.dumps([json.dumps(train, ensure_ascii=False)]))
    out = tmp_path / "out"
    res = _cli("augment", "--method", "llm", "--task", "fine", "--train", TRAIN, "--protect", VAL,
               "--balance", "8", "--out", out, "--backend", "fake", "--fake-replies", replies,
               "--max-requests-per-level", "2", check=EXIT_SHORT)
    assert "level 0: 0 of 2 posts accepted, 2 short" in res.stderr
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Not balanced" in report and "level 10: 0 of 2" in report
    assert load_dataset(out / "corpus.tsv").texts == train  # no copies, no padding
    assert json.loads((out / "manifest.json").read_text())["result"]["shortfall"]["3"] == 2


def test_refuses_without_protect_file(tmp_path):
    res = _cli("augment", "--method", "eda", "--task", "fine", "--train", TRAIN, "--balance", "8",
               "--out", tmp_path / "out", check=None)
    assert isinstance(res.exception, UserError) and "--protect" in str(res.exception)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", ["synonym", "eda"])
def test_rule_methods_balance_the_demo_corpus(tmp_path, method):
    out = tmp_path / method
    _cli("augment", "--method", method, "--task", "fine", "--train", TRAIN, "--protect", VAL,
         "--balance", "9", "--out", out)
    corpus = load_dataset(out / "corpus.tsv")
    assert Counter(corpus.labels) == {lv: 9 for lv in range(11)}
    synth = [r for r in jsonlines.open(out / "corpus.jsonl") if r["synthetic"]]
    ops = {"synonym"} if method == "synonym" else {"synonym", "eda-insert", "eda-swap", "eda-delete"}
    assert {r["method"] for r in synth} <= ops and all(r["source_ids"] for r in synth)
    stats = _cli("data", "stats", out / "corpus.tsv", VAL).stdout
    assert re.search(r"overlap .*corpus\.tsv x .*val\.tsv: 0 shared texts", stats), stats


def test_backtranslate_round_trips_through_the_runner(tmp_path):
    def translate(req, i):
        post = re.search(r"<post>\n(.*)\n</post>", _last_user(req), re.DOTALL).group(1)
        if req.id.endswith("zh-en"):
            return "EN " + hashlib.sha1(post.encode()).hexdigest()[:10]
        return random_post(post)

    runner = Runner(FakeBackend(translate), RunnerConfig(quiet=True))
    result = run_augment(config(tmp_path, method="backtranslate", balance="8"), runner=runner)
    assert result.exit_code == 0 and runner.backend.calls == 2 * 11 * 3
    synth = [r for r in jsonlines.open(tmp_path / "out" / "corpus.jsonl") if r["synthetic"]]
    assert len(synth) == 22 and all(r["prompt"]["name"].startswith("translate/") for r in synth)
    assert Counter(load_dataset(tmp_path / "out" / "corpus.tsv").labels) == {lv: 8 for lv in range(11)}


def _server_reply(seen: dict[str, str]):
    def reply(body: dict, index: int) -> str:
        key = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        prompt = body["messages"][-1]["content"]
        text = mixed_reply(prompt, key, n_good=1)
        seen[text] = key
        return text
    return reply


def _finished_keys(out: Path, seen: dict[str, str]) -> set[str]:
    keys = set()
    for path in (out / "raw").glob("generate-r*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.endswith("}") else None
            if row and row["generations"]:
                keys.add(seen[row["generations"][0]["text"]])
    return keys


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_finished_requests(tmp_path):
    seen: dict[str, str] = {}
    with LLMServer(latency_s=0.15, reply=_server_reply(seen), record=True) as server:
        args = ["augment", "--method", "llm", "--task", "fine", "--train", TRAIN, "--protect", VAL,
                "--balance", "10", "--posts-per-request", "3", "--backend", "openai",
                "--base-url", server.url, "--model", "loopback", "--concurrency", "2"]
        cmd = [sys.executable, "-m", "llm_aug", "-q", *map(str, args)]
        proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "a")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while server.request_count < 26 and time.time() < deadline:  # into round 1
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "a" / "corpus.tsv").exists()
        finished = _finished_keys(tmp_path / "a", seen)
        assert len(finished) >= 20
        server.reset_counts()
        _cli_process(*args, "--out", tmp_path / "a")
        rerun = {hashlib.sha1(json.dumps(b, sort_keys=True).encode()).hexdigest() for _, b in server.recorded}
        assert rerun and not rerun & finished
        server.reset_counts()
        _cli_process(*args, "--out", tmp_path / "b")
        full = {hashlib.sha1(json.dumps(b, sort_keys=True).encode()).hexdigest() for _, b in server.recorded}
    assert full == rerun | finished  # the same requests, each asked for once
    assert (tmp_path / "a" / "corpus.tsv").read_bytes() == (tmp_path / "b" / "corpus.tsv").read_bytes()
    assert Counter(load_dataset(tmp_path / "b" / "corpus.tsv").labels) == {lv: 10 for lv in range(11)}


def test_llm_relabel_classifies_each_synthetic_post_once_through_the_runner(tmp_path):
    wrong = "我今天去公园散步看见湖里的鸭子，心情还不错。"
    truth: dict[str, int] = {}

    def reply(prompt: str, key: str) -> str:
        if re.fullmatch(r"L\d+-r\d+-\d+", key):  # a generation request
            posts = json.loads(mixed_reply(prompt, key))
            truth.update({p: level_of(prompt) for p in posts[:2]})
            return json.dumps(posts + ([wrong] if key == "L9-r0-0" else []), ensure_ascii=False)
        post = re.search(r"<post>\n(.*)\n</post>", prompt, re.DOTALL).group(1)
        return json.dumps({"label": 0 if post == wrong else truth[post]})

    runner = fake_runner(reply, tmp_path)
    result = run_augment(config(tmp_path, relabel="llm"), runner=runner)
    assert result.exit_code == 0
    rejected = {r["text"]: r for r in jsonlines.open(tmp_path / "out" / "rejected.jsonl")}
    assert rejected[wrong]["rejected_by"] == "label"
    classify_ids = [r.id for r in runner.backend.seen if not r.id.startswith("L")]
    assert len(classify_ids) == len(set(classify_ids)) == 11 * 6 + 1  # each survivor asked once
    assert sorted(p.name for p in (tmp_path / "out" / "raw").glob("relabel-*.jsonl")) == [
        "relabel-0.jsonl", "relabel-0.raw.jsonl", "relabel-1.jsonl", "relabel-1.raw.jsonl"]
    assert result.usage["runs"] == 4  # two generation rounds, two relabel calls


def test_relabel_with_a_trained_model_directory(tmp_path):
    from llm_aug.classifiers.baselines import TfidfSVM
    from llm_aug.classifiers.store import save_model
    from llm_aug.data.schemes import scheme_for_task

    train = load_dataset(TRAIN)
    model = tmp_path / "model"
    save_model(model, TfidfSVM().fit(train.texts, train.labels), scheme_for_task("fine"), {"method": "tfidf-svm"})
    result = run_augment(config(tmp_path, method="synonym", balance="8", relabel=str(model), tolerance=0))
    kept = [r for r in jsonlines.open(tmp_path / "out" / "corpus.jsonl") if r["synthetic"]]
    rejected = list(jsonlines.open(tmp_path / "out" / "rejected.jsonl"))
    assert all(r["scores"]["label"] == r["label"] for r in kept)  # tolerance 0: exact agreement
    assert result.rejections["label"] == sum(r["rejected_by"] == "label" for r in rejected)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["relabel"] == str(model)


def test_training_rows_that_leak_a_protected_post_are_dropped(tmp_path, demo_dir):
    val = load_dataset(demo_dir / "val.tsv")
    train_text = (demo_dir / "train.tsv").read_text(encoding="utf-8")
    leaked = val.rows[0].text + "！"  # same post up to punctuation
    train = tmp_path / "train.tsv"
    train.write_text(train_text + f"{leaked}\t{val.rows[0].label}\n", encoding="utf-8")
    out = tmp_path / "out"
    res = _cli("augment", "--method", "synonym", "--task", "fine", "--train", train, "--balance", "7",
               "--protect", demo_dir / "val.tsv", "--out", out, check=None)
    assert res.exit_code in (0, EXIT_SHORT), (res.stderr, res.exception)
    stats = _cli("data", "stats", out / "corpus.tsv", demo_dir / "val.tsv", "--json")
    assert json.loads(stats.stdout)["overlap"][0]["shared_texts"] == 0


def test_training_near_copies_of_protected_posts_are_reported_and_dropped_on_request(tmp_path, demo_dir, caplog):
    val = load_dataset(demo_dir / "val.tsv")
    exact = val.rows[0].text + "！"  # same post up to punctuation: always dropped
    near = "说真的，" + val.rows[1].text + "唉，就这样吧。"  # a wrapped copy: a near-copy
    train = write(tmp_path / "train.tsv", (demo_dir / "train.tsv").read_text(encoding="utf-8")
                  + f"{exact}\t{val.rows[0].label}\n{near}\t{val.rows[1].label}\n")
    for flag in ([], ["--drop-near-protected"]):
        out = tmp_path / ("drop" if flag else "keep")
        caplog.clear()
        res = _cli("augment", "--method", "synonym", "--task", "fine", "--train", train, "--balance", "7",
                   "--protect", demo_dir / "val.tsv", "--out", out, *flag, check=None)
        assert res.exit_code in (0, EXIT_SHORT), (res.stderr, res.exception)
        corpus = load_dataset(out / "corpus.tsv").texts
        assert exact not in corpus and (near in corpus) == (not flag)
        copies = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["result"]["protected_copies"]
        assert (copies["exact"], copies["near"], copies["near_dropped"]) == (1, 1, bool(flag))
        assert copies["dropped"] == 1 + bool(flag)
        assert copies["examples"][0]["reason"].startswith(f"100% of protected post {val.rows[1].id} reappears")
        report = (out / "report.md").read_text(encoding="utf-8")
        assert "1 training post(s) are near-copies of protected posts" in report
        assert ("pass --drop-near-protected to drop them" in report) == (not flag)
        assert "1 training post(s) are near-copies of protected posts" in caplog.text
        assert "dropped 1 training post(s) that also appear in the protect files" in caplog.text
