"""BertClassifier on a tiny random BERT built from the test data (CPU, no downloads)."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
import torch
from sklearn.base import clone

from llm_aug.classifiers import bert_train
from llm_aug.classifiers.bert import BertClassifier, build_tiny_bert
from llm_aug.classifiers.bert_data import balanced_weights, collate, encode
from llm_aug.core.errors import UserError

HAPPY = ["今天很开心", "好快乐啊", "开心的一天", "我很快乐", "周末真开心", "和朋友一起很快乐"]
DARK = ["我想死", "不想活了", "真的想死了", "活着没意思不想活", "想死的心都有", "我不想活下去了"]
FILLER = "，。的了在是我们天气工作学校晚上吃饭回家"


def make_posts(n: int, seed: int, ratio: float = 0.5) -> tuple[list[str], list[int]]:
    """Separable posts: a happy or dark phrase inside random filler of varying length."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = int(i < n * ratio) if ratio != 0.5 else i % 2
        phrase = rng.choice(DARK if label else HAPPY)
        def pad() -> str:
            return "".join(rng.choice(FILLER) for _ in range(rng.randint(0, 12)))
        texts.append(pad() + phrase + pad())
        labels.append(label)
    return texts, labels


X, Y = make_posts(60, seed=1)
XV, YV = make_posts(24, seed=2)
FAST = {"lr": 3e-3, "batch_size": 8, "warmup_ratio": 0.0, "progress": False, "max_length": 40}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CI box is small and shared: one intra-op thread is faster than two fighting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(build_tiny_bert(X + XV, tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="module")
def fitted(tiny) -> BertClassifier:
    return BertClassifier(tiny, epochs=6, **FAST).fit(X, Y, XV, YV)  # weighted_f1, patience 2


def test_learns_separable_posts(fitted):
    losses = [h["train_loss"] for h in fitted.history_]
    assert losses[-1] < 0.7 * losses[0]
    assert (fitted.predict(XV) == np.asarray(YV)).mean() >= 0.9
    assert set(fitted.history_[0]) >= {"train_loss", "val_loss", "val_weighted_f1", "examples_per_s"}


def test_predictions_keep_input_order(fitted):
    proba = fitted.predict_proba(XV)
    assert proba.shape == (len(XV), 2) and np.allclose(proba.sum(axis=1), 1.0)
    reversed_proba = fitted.predict_proba(XV[::-1])
    assert np.allclose(reversed_proba[::-1], proba, atol=1e-5)
    assert np.allclose(fitted.predict_proba(XV[:1]), proba[:1], atol=1e-5)
    assert fitted.predict([]).shape == (0,)


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "bert_config.json").read_text(encoding="utf-8"))
    assert meta["classes"] == [0, 1] and meta["params"]["max_length"] == 40 and meta["history"]
    loaded = BertClassifier.load(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(XV), fitted.predict_proba(XV))
    assert loaded.get_params() == {**fitted.get_params(), "labels": None}


def test_pickle_round_trip(fitted):
    clone_ = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(clone_.predict_proba(XV), fitted.predict_proba(XV))
    assert clone_.history_ == fitted.history_


def test_sklearn_params(fitted):
    params = fitted.get_params()
    assert params["max_length"] == 40 and params["padding"] == "dynamic"
    fresh = clone(fitted).set_params(epochs=1)
    assert fresh.epochs == 1 and not hasattr(fresh, "model_")


def test_resume_continues_at_next_epoch(tiny, tmp_path, monkeypatch):
    params = dict(epochs=3, seed=3, **FAST)
    full = BertClassifier(tiny, **params).fit(X, Y)
    real_save, saved = bert_train.save_checkpoint, []

    def crash_after_two(path, state):
        real_save(path, state)
        saved.append(state.epoch)
        if state.epoch == 2:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(bert_train, "save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        BertClassifier(tiny, checkpoint_dir=tmp_path, **params).fit(X, Y)
    resumed = BertClassifier(tiny, checkpoint_dir=tmp_path, resume=True, **params).fit(X, Y)
    assert saved == [1, 2, 3]  # the resumed run trained epoch 3 only
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    assert [h["train_loss"] for h in resumed.history_] == [h["train_loss"] for h in full.history_]
    assert np.allclose(resumed.predict_proba(XV), full.predict_proba(XV), atol=1e-6)
    again = BertClassifier(tiny, checkpoint_dir=tmp_path, resume=True, **params).fit(X, Y)
    assert saved == [1, 2, 3] and again.history_ == resumed.history_  # finished: nothing to train


def test_dynamic_padding_pads_each_batch_to_its_longest_row(tiny, monkeypatch):
    widths = []

    def spy(rows, pad_id, width=None):
        batch = collate(rows, pad_id, width)
        widths.append((batch["input_ids"].shape[1], max(len(r) for r in rows)))
        return batch

    monkeypatch.setattr(bert_train, "collate", spy)
    BertClassifier(tiny, epochs=1, **{**FAST, "max_length": 150}).fit(X, Y)
    assert widths and all(width == longest < 150 for width, longest in widths)
    widths.clear()
    BertClassifier(tiny, epochs=1, padding="max_length", **{**FAST, "max_length": 150}).fit(X, Y)
    assert widths and all(width == 150 for width, _ in widths)


def test_collate_and_encode(tiny):
    from transformers import AutoTokenizer

    rows = encode(AutoTokenizer.from_pretrained(tiny), ["我想死", "今天很开心啊", "开" * 90], max_length=50)
    assert [len(r) for r in rows] == [5, 8, 50]  # [CLS] + chars + [SEP], truncated at 50
    batch = collate(rows[:2], pad_id=0)
    assert batch["input_ids"].shape == (2, 8) and batch["attention_mask"][0].tolist() == [1] * 5 + [0] * 3
    assert collate(rows[:2], pad_id=0, width=50)["input_ids"].shape == (2, 50)


def test_class_weights_change_the_loss(tiny):
    Xi, Yi = make_posts(40, seed=4, ratio=0.2)
    assert balanced_weights([0, 0, 0, 1], 3).tolist() == [2 / 3, 2.0, 1.0]
    plain = BertClassifier(tiny, epochs=1, **FAST).fit(Xi, Yi)
    weighted = BertClassifier(tiny, epochs=1, class_weights="balanced", **FAST).fit(Xi, Yi)
    assert plain.history_[0]["train_loss"] != pytest.approx(weighted.history_[0]["train_loss"], abs=1e-4)


def test_same_seed_same_run(tiny):
    a, b, c = (BertClassifier(tiny, epochs=2, seed=s, **FAST).fit(X, Y) for s in (7, 7, 8))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    assert np.array_equal(a.predict_proba(XV), b.predict_proba(XV))
    assert not np.array_equal(a.predict_proba(XV), c.predict_proba(XV))


def test_early_stopping_restores_best_epoch(tiny):
    flipped = [1 - v for v in YV]  # val disagrees with train: val loss must rise once it learns
    est = BertClassifier(tiny, epochs=10, early_stopping="loss", patience=1, **FAST).fit(X, Y, XV, flipped)
    losses = [h["val_loss"] for h in est.history_]
    assert len(losses) < 10
    assert est.best_epoch_ == int(np.argmin(losses)) + 1 and len(losses) == est.best_epoch_ + 1
    proba = est.predict_proba(XV)
    restored = float(-np.log(proba[np.arange(len(XV)), flipped]).mean())
    assert restored == pytest.approx(losses[est.best_epoch_ - 1], abs=1e-4)


def test_labels_option_accumulation_and_bf16(tiny):
    names = ["calm", "risk", "unused"]
    est = BertClassifier(tiny, epochs=1, labels=names, grad_accum_steps=2, precision="bf16", **FAST)
    est.fit(X, [names[v] for v in Y])
    assert est.predict_proba(XV).shape == (len(XV), 3)
    assert set(est.predict(XV)) <= set(names)
    assert est.history_[-1]["lr"] == 0.0  # the schedule counted optimizer steps, not batches
    assert np.isfinite(est.history_[0]["train_loss"])


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        BertClassifier(tmp_path / "nope", **FAST).fit(X, Y)
    with pytest.raises(UserError, match="no-such-org/no-such-bert"):
        BertClassifier("no-such-org/no-such-bert", local_files_only=True, **FAST).fit(X, Y)


def test_bad_options_are_user_errors(tiny):
    with pytest.raises(UserError, match="padding"):
        BertClassifier(tiny, padding="longest").fit(X, Y)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="fp16"):
            BertClassifier(tiny, precision="fp16", **FAST).fit(X, Y)
    with pytest.raises(UserError, match="not in labels"):
        BertClassifier(tiny, labels=[0], **FAST).fit(X, Y)


def test_resume_refuses_a_checkpoint_of_another_run(tiny, tmp_path):
    BertClassifier(tiny, epochs=1, checkpoint_dir=tmp_path, **FAST).fit(X, Y)
    with pytest.raises(UserError, match="another run"):
        BertClassifier(tiny, epochs=1, checkpoint_dir=tmp_path, resume=True, **FAST).fit(X[:40], Y[:40])
