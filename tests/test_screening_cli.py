"""Risk screening end to end: train -> calibrate-threshold -> predict -> triage (issue 21)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from clirun import assert_ok, invoke
from llm_aug.core.errors import UserError

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    demo_dir, out = DEMO, tmp_path_factory.mktemp("screen") / "m"
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", demo_dir / "train.tsv",
                     "--val", demo_dir / "val.tsv", "--out", out))
    return out


def test_calibrate_threshold_on_a_model_directory_writes_a_profile(model):
    result = assert_ok(invoke("calibrate-threshold", model, "--calibrate", "temperature", "--target", "recall=0.9"))
    profile = json.loads((model / "screening.json").read_text(encoding="utf-8"))
    assert profile["calibrate"] == "temperature" and profile["task"] == "fine"
    assert [t["target"] for t in profile["thresholds"]] == [0.9]
    assert {s["kind"] for s in profile["sets"]} == {"marginal", "mondrian", "ordinal"}
    assert profile["calibration_split"]["n"] == 33  # the demo's val rows, never its test
    assert "val.tsv" in profile["calibration_split"]["gold"]
    assert "| 0.9 |" in result.stdout


def test_triage_orders_by_high_risk_probability_and_reports_on_gold(model, demo_dir, tmp_path):
    assert_ok(invoke("calibrate-threshold", model, "--coverage", "0.8"))
    preds = tmp_path / "test.jsonl"
    assert_ok(invoke("predict", model, "--input", demo_dir / "test.tsv", "--output", preds))
    queue = tmp_path / "queue.csv"
    result = assert_ok(invoke("triage", preds, "--profile", model, "--out", queue, "--gold", demo_dir / "test.tsv"))
    rows = list(csv.DictReader(queue.open(encoding="utf-8")))
    assert len(rows) == 33 and [int(r["rank"]) for r in rows] == list(range(1, 34))
    p = [float(r["p_high"]) for r in rows]
    assert p == sorted(p, reverse=True)
    assert all(r["levels"] for r in rows)  # ordinal ranges such as "4-7"
    summary = json.loads(queue.with_suffix(".summary.json").read_text(encoding="utf-8"))
    assert summary["evaluation"]["coverage"]["n"] == 33
    assert {op["target"] for op in summary["operating_points"]} == {0.9, 0.95, 0.99}
    assert "recall target" in result.stdout


def test_rows_without_probabilities_go_first_and_are_flagged(model, tmp_path):
    profile_dir = tmp_path / "profile"
    assert_ok(invoke("calibrate-threshold", model, "--out", profile_dir))
    preds = tmp_path / "llm.jsonl"
    rng = np.random.default_rng(0)
    rows = [{"id": f"r{i}", "text": f"帖子{i}", "pred": 3, "proba": list(rng.dirichlet(np.ones(11)))} for i in range(5)]
    rows.append({"id": "failed", "text": "没有答案", "pred": None, "error": "HTTP 500", "proba": None})
    preds.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    queue = tmp_path / "q.csv"
    assert_ok(invoke("triage", preds, "--profile", profile_dir, "--out", queue))
    first = next(csv.DictReader(queue.open(encoding="utf-8")))
    assert first["id"] == "failed" and first["status"] == "unscored" and first["uncertain"] == "yes"


def test_bad_inputs_are_one_line_errors(model, tmp_path, demo_dir):
    preds = tmp_path / "few.jsonl"
    preds.write_text(json.dumps({"id": "x", "pred": 1}) + "\n", encoding="utf-8")
    res = invoke("calibrate-threshold", preds, "--task", "fine")
    assert isinstance(res.exception, UserError) and "--gold" in str(res.exception)
    res = invoke("calibrate-threshold", model, "--target", "precision=0.9")
    assert isinstance(res.exception, UserError) and "recall" in str(res.exception)
    res = invoke("calibrate-threshold", model, "--calibrate", "platt")
    assert isinstance(res.exception, UserError) and "isotonic" in str(res.exception)
    res = invoke("triage", preds, "--profile", tmp_path, "--out", tmp_path / "q.csv")
    assert isinstance(res.exception, UserError) and "screening.json" in str(res.exception)


def test_predict_under_a_profile_writes_level_sets_and_the_queue(model, tmp_path):
    assert_ok(invoke("calibrate-threshold", model))
    out, queue = tmp_path / "p.jsonl", tmp_path / "queue.csv"
    assert_ok(invoke("predict", model, "--input", DEMO / "test.tsv", "--output", out, "--triage", queue))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(isinstance(r["levels"], list) and r["levels"] and r["pred"] is not None for r in rows)
    assert all(0 <= r["p_high"] <= 1 and set(r["alerts"]) == {"recall>=0.9", "recall>=0.95", "recall>=0.99"}
               for r in rows)
    # ordinal sets are contiguous ranges of levels
    assert all(r["levels"] == list(range(r["levels"][0], r["levels"][-1] + 1)) for r in rows)
    assert len(list(csv.DictReader(queue.open(encoding="utf-8")))) == len(rows)


def test_train_calibrates_on_cross_fitted_train_and_records_it(tmp_path):
    out = tmp_path / "cal"
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", DEMO / "train.tsv",
                     "--val", DEMO / "val.tsv", "--out", out, "--calibrate", "sigmoid"))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["calibration"]["method"] == "sigmoid" and config["calibration"]["split"] == "cv"
    rows = [json.loads(line) for line in (out / "val_predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(abs(sum(r["proba"]) - 1) < 1e-4 for r in rows)
    plain = tmp_path / "plain"
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", DEMO / "train.tsv",
                     "--val", DEMO / "val.tsv", "--out", plain))
    assert "calibration" not in json.loads((plain / "config.json").read_text(encoding="utf-8"))
    before = [json.loads(line)["proba"] for line in (plain / "val_predictions.jsonl").read_text().splitlines()]
    assert before != [r["proba"] for r in rows]  # the map changed the probabilities
    res = invoke("train", "--task", "fine", "--train", DEMO / "train.tsv", "--val", DEMO / "val.tsv",
                 "--out", tmp_path / "x", "--calibrate", "platt")
    assert isinstance(res.exception, UserError) and "temperature" in str(res.exception)


@pytest.mark.slow
def test_the_embedding_stack_calibrates_cross_fitted_and_screens(tmp_path):
    out = tmp_path / "stack"
    assert_ok(invoke("train", "--task", "fine", "--method", "stack", "--train", DEMO / "train.tsv",
                     "--val", DEMO / "val.tsv", "--out", out, "--calibrate", "isotonic"))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["calibration"]["method"] == "isotonic" and config["calibration"]["split"] == "cv"
    assert_ok(invoke("calibrate-threshold", out))
    preds = tmp_path / "p.jsonl"
    assert_ok(invoke("predict", out, "--input", DEMO / "test.tsv", "--output", preds))
    rows = [json.loads(line) for line in preds.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 33 and all(r["levels"] for r in rows)


def test_calibrate_threshold_reports_on_an_evaluation_split(model, tmp_path):
    preds = tmp_path / "test.jsonl"
    assert_ok(invoke("predict", model, "--input", DEMO / "test.tsv", "--output", preds))
    out = tmp_path / "prof"
    result = assert_ok(invoke("calibrate-threshold", model, "--out", out, "--eval", preds,
                              "--eval-gold", DEMO / "test.tsv"))
    assert f"on {preds}: 33 posts" in result.stdout and "alerts / 1,000" in result.stdout
    assert "coverage" in result.stdout and "ECE" in result.stdout
    half = invoke("calibrate-threshold", model, "--out", out, "--eval", preds)
    assert isinstance(half.exception, UserError) and "--eval-gold" in str(half.exception)
