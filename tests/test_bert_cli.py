"""The BERT fine-tuner through the CLI: train (with val early stopping, several seeds) -> predict."""

from __future__ import annotations

import json

import pytest
import torch

from clirun import assert_ok, invoke
from llm_aug.classifiers.bert import build_tiny_bert
from llm_aug.data.io import load_dataset


@pytest.fixture
def one_thread():
    """The CI box is small and shared: one intra-op thread is faster than two fighting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_bert_with_seeds_then_predict(tmp_path, demo_dir, one_thread):
    texts = load_dataset(demo_dir / "train.tsv").texts + load_dataset(demo_dir / "val.tsv").texts
    tiny = build_tiny_bert(texts, tmp_path / "tiny", hidden=32, layers=1, heads=2)
    out = tmp_path / "bert"
    assert_ok(invoke("train", "--task", "fine", "--method", "bert", "--model-path", tiny, "--set", "epochs=2",
                     "--set", "batch_size=16", "--set", "progress=false", "--set", "device=\"cpu\"",
                     "--seeds", "1,2", "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv",
                     "--out", out))
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [1, 2] and set(summary["val_weighted_f1"]) == {"1", "2"}
    config = json.loads((out / "seed-1" / "config.json").read_text())
    assert config["method"] == "bert" and config["params"]["model_name_or_path"] == str(tiny)

    preds = tmp_path / "p.jsonl"
    assert_ok(invoke("predict", out / "seed-1", "--input", demo_dir / "test.tsv", "--output", preds))
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 33 and len(rows[0]["proba"]) == 11


def test_bert_calibrates_on_val_then_screens(tmp_path, demo_dir, one_thread):
    """Issue 21 on the fine-tuner: cross-fitting is refused (it early-stops on val), val works."""
    from llm_aug.core.errors import UserError

    texts = load_dataset(demo_dir / "train.tsv").texts + load_dataset(demo_dir / "val.tsv").texts
    tiny = build_tiny_bert(texts, tmp_path / "tiny", hidden=32, layers=1, heads=2)
    common = ["train", "--task", "fine", "--method", "bert", "--model-path", tiny, "--set", "epochs=1",
              "--set", "batch_size=16", "--set", "progress=false", "--set", "device=\"cpu\"",
              "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv", "--calibrate", "temperature"]
    refused = invoke(*common, "--out", tmp_path / "cv")
    assert isinstance(refused.exception, UserError) and "--calibrate-on val" in str(refused.exception)
    out = tmp_path / "bert"
    assert_ok(invoke(*common, "--calibrate-on", "val", "--out", out))
    config = json.loads((out / "config.json").read_text())
    assert config["calibration"]["split"] == "val" and "optimistic" in config["calibration"]["note"]
    assert_ok(invoke("calibrate-threshold", out, "--target", "recall=0.9"))
    preds = tmp_path / "p.jsonl"
    assert_ok(invoke("predict", out, "--input", demo_dir / "test.tsv", "--output", preds))
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 33 and all(r["levels"] and 0 <= r["p_high"] <= 1 for r in rows)
