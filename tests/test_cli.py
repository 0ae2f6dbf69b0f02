"""CLI round trip train -> predict -> evaluate, and user errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import write


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_aug", "--quiet", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_train_predict_evaluate_round_trip(demo_dir, tmp_path):
    model = tmp_path / "model"
    res = run_cli("train", "--task", "fine", "--method", "tfidf-lr", "--train", demo_dir / "train.tsv",
                  "--val", demo_dir / "val.tsv", "--out", model, "--seed", "1")
    assert res.returncode == 0, res.stderr
    for name in ("model.pkl", "config.json", "scheme.json", "manifest.json", "val_predictions.jsonl"):
        assert (model / name).is_file(), name
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["config"]["method"] == "tfidf-lr"
    assert len(manifest["data_files"]) == 2

    preds = tmp_path / "out" / "test.jsonl"
    res = run_cli("predict", model, "--input", demo_dir / "test.tsv", "--output", preds)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 33 and set(rows[0]) == {"id", "text", "pred", "proba"}
    assert len(rows[0]["proba"]) == 11

    res = run_cli("evaluate", preds, "--gold", demo_dir / "test.tsv", "--json", "--n-boot", "200")
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)
    for key in ("accuracy", "weighted_f1", "macro_f1", "n", "mae", "qwk", "within1", "invalid_rate"):
        assert key in metrics, key
    assert metrics["n"] == 33
    # 11 classes at chance would score ~0.09; the demo levels carry learnable cues.
    assert metrics["accuracy"] > 0.2
    assert (preds.parent / "results.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--task", "fine", "--train", "MISSING.tsv", "--val", "MISSING.tsv", "--out", "o"],
         "MISSING.tsv: file not found"),
        (["train", "--task", "nope", "--train", "x", "--val", "x", "--out", "o"], "unknown task 'nope'"),
        (["predict", "no_model_dir", "--input", "x.tsv", "--output", "p.jsonl"], "not a model directory"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, args, message):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_label_reports_file_and_line(tmp_path, demo_dir):
    bad = write(tmp_path / "bad.tsv", "comment\tmyLabel\n好\t3\n坏\t12\n")
    res = run_cli("train", "--task", "fine", "--train", bad, "--val", demo_dir / "val.tsv", "--out", tmp_path / "m")
    assert res.returncode == 2 and "bad.tsv:3: label 12 is outside scheme" in res.stderr


def test_data_stats_reports_overlap(tmp_path):
    a = write(tmp_path / "a.tsv", "comment\tmyLabel\n同一句\t1\n别的\t2\n")
    b = write(tmp_path / "b.tsv", "comment\tmyLabel\n同一句。\t1\n")
    res = run_cli("data", "stats", a, b, "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["files"][0]["labels"]["1"] == 1
    assert report["overlap"][0]["shared_texts"] == 1


def test_data_fetch_from_local_copy_and_offline_error(tmp_path, demo_dir, monkeypatch):
    src = tmp_path / "src" / "fine"
    src.mkdir(parents=True)
    (src / "train.tsv").write_bytes((demo_dir / "train.tsv").read_bytes())
    res = run_cli("data", "fetch", "sos1k", "--dest", tmp_path / "dest", "--from", tmp_path / "src")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "dest" / "fine" / "train.tsv").is_file()
    assert (tmp_path / "dest" / "manifest.json").is_file()
    # A closed loopback port stands in for "offline": the error must say what to do.
    monkeypatch.setenv("LLM_AUG_SOS1K_BASE_URL", "http://127.0.0.1:9")
    res = run_cli("data", "fetch", "sos1k", "--dest", tmp_path / "dl")
    assert res.returncode == 2 and "--from DIR" in res.stderr


def test_manifest_scrubs_credentials_but_keeps_token_counts():
    from llm_aug.manifest import scrub

    out = scrub({"llm": {"api_key": "sk-x", "OPENAI_API_KEY": "sk-y", "token": "t", "access_token": "a"},
                 "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    assert all(v == "<redacted>" for v in out["llm"].values())
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5}


def test_fixed_params_do_not_refit_identical_candidates(demo_dir):
    from llm_aug.classifiers.registry import get_method
    from llm_aug.data.io import load_dataset
    from llm_aug.data.schemes import scheme_for_task
    from llm_aug.training import select_on_val

    scheme = scheme_for_task("fine")
    train, val = load_dataset(demo_dir / "train.tsv", scheme), load_dataset(demo_dir / "val.tsv", scheme)
    params, _, table = select_on_val(get_method("tfidf-svm"), train, val, scheme, 0, {"C": 1.0})
    assert len(table) == 4 and all(row["params"]["C"] == 1.0 for row in table)  # 16 -> 4 distinct
    assert params["C"] == 1.0


def test_select_ranks_methods_by_cv_over_train_and_val(tmp_path, demo_dir):
    res = run_cli("select", "--task", "fine", "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv",
                  "--methods", "majority,tfidf-lr", "--folds", "3", "--repeats", "1", "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    result = json.loads((tmp_path / "selection.json").read_text())
    ranking = {r["method"]: r for r in result["ranking"]}
    assert len(ranking["tfidf-lr"]["folds"]) == 3
    assert result["best"] == "tfidf-lr" and ranking["tfidf-lr"]["cv_mean"] > ranking["majority"]["cv_mean"]
    res = run_cli("select", "--task", "fine", "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv",
                  "--methods", "majority", "--folds", "20", "--out", tmp_path)
    assert res.returncode == 2 and "--folds 20 needs" in res.stderr


def test_demo_main_command_runs_the_pipeline(tmp_path):
    res = run_cli("demo", "--out", tmp_path / "demo")
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "demo" / "report" / "comparison.html").read_text(encoding="utf-8")
    for system in ("majority", "tfidf-svm", "stack", "tfidf-svm+synonym-aug"):
        assert system in html
    corpus = [json.loads(line) for line in (tmp_path / "demo" / "augmented" / "corpus.jsonl").read_text().splitlines()]
    assert any(r["synthetic"] for r in corpus) and any(not r["synthetic"] for r in corpus)
