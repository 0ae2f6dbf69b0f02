"""The BERT fine-tuner through the CLI: train (with val early stopping, several seeds) -> predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from llm_aug.classifiers.bert import build_tiny_bert
from llm_aug.data.io import load_dataset


def test_train_bert_with_seeds_then_predict(tmp_path, demo_dir):
    texts = load_dataset(demo_dir / "train.tsv").texts + load_dataset(demo_dir / "val.tsv").texts
    tiny = build_tiny_bert(texts, tmp_path / "tiny", hidden=32, layers=1, heads=2)
    out = tmp_path / "bert"
    cmd = [sys.executable, "-m", "llm_aug", "-q", "train", "--task", "fine", "--method", "bert",
           "--model-path", str(tiny), "--set", "epochs=2", "--set", "batch_size=16", "--set", "progress=false",
           "--set", "device=\"cpu\"", "--seeds", "1,2", "--train", str(demo_dir / "train.tsv"),
           "--val", str(demo_dir / "val.tsv"), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", **os.environ})
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [1, 2] and set(summary["val_weighted_f1"]) == {"1", "2"}
    config = json.loads((out / "seed-1" / "config.json").read_text())
    assert config["method"] == "bert" and config["params"]["model_name_or_path"] == str(tiny)

    preds = tmp_path / "p.jsonl"
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-q", "predict", str(out / "seed-1"), "--input",
                          str(demo_dir / "test.tsv"), "--output", str(preds)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 33 and len(rows[0]["proba"]) == 11
