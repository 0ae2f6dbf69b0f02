"""CLI round trip train -> predict -> evaluate, and user errors without tracebacks.

The commands run in-process (``clirun.invoke``); only the entry-point test starts
``python -m llm_aug``, since turning a ``UserError`` into exit code 2 is its job.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clirun import assert_ok, invoke
from conftest import write
from llm_aug.core.errors import UserError


def test_train_predict_evaluate_round_trip(demo_dir, tmp_path):
    model = tmp_path / "model"
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", demo_dir / "train.tsv",
                     "--val", demo_dir / "val.tsv", "--out", model, "--seed", "1"))
    for name in ("model.pkl", "config.json", "scheme.json", "manifest.json", "val_predictions.jsonl"):
        assert (model / name).is_file(), name
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["config"]["method"] == "tfidf-lr"
    assert len(manifest["data_files"]) == 2

    preds = tmp_path / "out" / "test.jsonl"
    assert_ok(invoke("predict", model, "--input", demo_dir / "test.tsv", "--output", preds))
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 33 and set(rows[0]) == {"id", "text", "pred", "proba"}
    assert len(rows[0]["proba"]) == 11

    res = assert_ok(invoke("evaluate", preds, "--gold", demo_dir / "test.tsv", "--json", "--n-boot", "200"))
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
def test_user_errors_name_the_problem(tmp_path, args, message):
    res = invoke(*args, cwd=tmp_path)
    assert isinstance(res.exception, UserError) and message in str(res.exception)


def test_entry_point_prints_user_errors_as_one_line_and_exits_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "llm_aug", "--quiet", "train", "--task", "nope", "--train", "x",
                          "--val", "x", "--out", "o"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "unknown task 'nope'" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_label_reports_file_and_line(tmp_path, demo_dir):
    bad = write(tmp_path / "bad.tsv", "comment\tmyLabel\n好\t3\n坏\t12\n")
    res = invoke("train", "--task", "fine", "--train", bad, "--val", demo_dir / "val.tsv", "--out", tmp_path / "m")
    assert isinstance(res.exception, UserError) and "bad.tsv:3: label 12 is outside scheme" in str(res.exception)


def test_data_stats_reports_overlap(tmp_path):
    a = write(tmp_path / "a.tsv", "comment\tmyLabel\n同一句\t1\n别的\t2\n")
    b = write(tmp_path / "b.tsv", "comment\tmyLabel\n同一句。\t1\n")
    report = json.loads(assert_ok(invoke("data", "stats", a, b, "--json")).stdout)
    assert report["files"][0]["labels"]["1"] == 1
    assert report["overlap"][0]["shared_texts"] == 1


def test_manifest_scrubs_credentials_but_keeps_token_counts():
    from llm_aug.core.manifest import scrub

    out = scrub({"llm": {"api_key": "sk-x", "OPENAI_API_KEY": "sk-y", "token": "t", "access_token": "a"},
                 "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    assert all(v == "<redacted>" for v in out["llm"].values())
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5}


def test_fixed_params_do_not_refit_identical_candidates(demo_dir):
    from llm_aug.classifiers.registry import get_method
    from llm_aug.data.io import load_dataset
    from llm_aug.data.schemes import scheme_for_task
    from llm_aug.jobs.train import select_on_val

    scheme = scheme_for_task("fine")
    train, val = load_dataset(demo_dir / "train.tsv", scheme), load_dataset(demo_dir / "val.tsv", scheme)
    params, _, table = select_on_val(get_method("tfidf-svm"), train, val, scheme, 0, {"C": 1.0})
    assert len(table) == 4 and all(row["params"]["C"] == 1.0 for row in table)  # 16 -> 4 distinct
    assert params["C"] == 1.0


def test_select_ranks_methods_by_cv_over_train_and_val(tmp_path, demo_dir):
    assert_ok(invoke("select", "--task", "fine", "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv",
                     "--methods", "majority,tfidf-lr", "--folds", "3", "--repeats", "1", "--out", tmp_path))
    result = json.loads((tmp_path / "selection.json").read_text())
    ranking = {r["method"]: r for r in result["ranking"]}
    assert len(ranking["tfidf-lr"]["folds"]) == 3
    assert result["best"] == "tfidf-lr" and ranking["tfidf-lr"]["cv_mean"] > ranking["majority"]["cv_mean"]
    res = invoke("select", "--task", "fine", "--train", demo_dir / "train.tsv", "--val", demo_dir / "val.tsv",
                 "--methods", "majority", "--folds", "20", "--out", tmp_path)
    assert isinstance(res.exception, UserError) and "--folds 20 needs" in str(res.exception)


def test_demo_main_command_runs_the_pipeline(tmp_path):
    result = assert_ok(invoke("demo", "--out", tmp_path / "demo"))
    html = (tmp_path / "demo" / "report" / "comparison.html").read_text(encoding="utf-8")
    for system in ("majority", "tfidf-svm", "stack", "tfidf-svm+synonym-aug"):
        assert system in html
    # The last lines name both pages, say the numbers are not results, and give a next step.
    last = result.stdout.strip().splitlines()[-4:]
    assert last[0] == f"comparison: {tmp_path / 'demo' / 'report' / 'comparison.html'}"
    assert last[1].startswith(f"augmentation report: {tmp_path / 'demo' / 'augmented' / 'report.html'}")
    assert "not results" in last[2] and last[3].startswith("next: ") and "llm-aug train" in last[3]
    # The two pages link to each other; the comparison says what the numbers are (and are not).
    augment_page = (tmp_path / "demo" / "augmented" / "report.html").read_text(encoding="utf-8")
    assert '<a href="../augmented/report.html">' in html and '<a href="../report/comparison.html">' in augment_page
    assert '<p class="banner" role="note">Demo numbers are not results' in html
    assert "<title>llm-aug comparison: fine (11 levels), TEST split (33 posts)</title>" in html
    assert "sos11," not in html
    corpus = [json.loads(line) for line in (tmp_path / "demo" / "augmented" / "corpus.jsonl").read_text().splitlines()]
    assert any(r["synthetic"] for r in corpus) and any(not r["synthetic"] for r in corpus)
