"""Experiment matrix: config validation, step keys, caching, atomic steps, report, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clirun import assert_ok, invoke
from conftest import DEMO, REPO, write
from llm_aug.core.errors import UserError
from llm_aug.eval.render import FONT_STACK
from llm_aug.experiment import expand, load_config, plan, run_experiment, write_report
from llm_aug.experiment.classifier_step import search_spec
from llm_aug.experiment.matrix import FileHashes, select, step_key
from llm_aug.jobs import train as training

ONE_SVM = {"C": [1.0], "class_weight": ["balanced"], "ngram_max": [3]}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny SOS-1K-shaped folder: the demo posts as fine, collapsed at level 6 as binary."""
    root = tmp_path / "data"
    for split in ("train", "val"):
        text = (DEMO / f"{split}.tsv").read_text(encoding="utf-8")
        write(root / "fine" / f"{split}.tsv", text)
        lines = text.splitlines()
        binary = [lines[0]] + [f"{t}\t{int(int(lab) >= 6)}" for t, lab in (ln.rsplit("\t", 1) for ln in lines[1:])]
        write(root / "binary" / f"{split}.tsv", "\n".join(binary) + "\n")
    train = (DEMO / "train.tsv").read_text(encoding="utf-8")
    write(root / "aug" / "more.tsv", train + "".join(train.splitlines(keepends=True)[1:6]))
    return root


def make_config(tmp_path: Path, data_dir: Path, **overrides) -> Path:
    cfg = {
        "data_dir": str(data_dir), "tasks": ["fine", "binary"], "seeds": [0], "n_boot": 50,
        "train_sets": {"fine": {"more": "aug/more.tsv"}},
        "systems": [{"name": "majority", "method": "majority", "train_sets": ["original"]},
                    {"name": "svm", "method": "tfidf-svm", "grid": ONE_SVM}],
    }
    cfg.update(overrides)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def count_fits(monkeypatch) -> list[int]:
    calls = [0]
    real = training.fit

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit", counting)
    return calls


def test_matrix_expansion(tmp_path, data_dir):
    path = make_config(tmp_path, data_dir, seeds=[0, 1], systems=[
        {"name": "majority", "method": "majority", "train_sets": ["original"]},
        {"name": "svm", "method": "tfidf-svm", "seeds": [3]},
        {"name": "zs", "kind": "llm", "tasks": ["fine"], "backend": {"kind": "fake"}},
        {"name": "fs", "kind": "llm", "shots": 2, "backend": {"kind": "fake"}},
    ])
    ids = [s.id for s in expand(load_config(path))]
    assert ids == [
        "fine/majority/original/s0", "fine/majority/original/s1",
        "fine/svm/original/s3", "fine/svm/more/s3",
        "fine/zs/zero-shot/s0", "fine/zs/zero-shot/s1",
        "fine/fs/original/s0", "fine/fs/original/s1",
        "binary/majority/original/s0", "binary/majority/original/s1",
        "binary/svm/original/s3",
        "binary/fs/original/s0", "binary/fs/original/s1",
    ]
    steps = expand(load_config(path))
    assert [s.id for s, keep in zip(steps, select(steps, "fine/svm/*,binary/fs")) if keep] == [
        "fine/svm/original/s3", "fine/svm/more/s3", "binary/fs/original/s0", "binary/fs/original/s1"]


def test_step_key_changes_with_every_input(tmp_path, data_dir):
    def key(**overrides) -> str:
        res = load_config(make_config(tmp_path, data_dir, **overrides))
        step = next(s for s in expand(res) if s.id == "fine/svm/original/s0")
        return step_key(step, res, FileHashes())

    base = key()
    assert key() == base  # deterministic
    svm = {"name": "svm", "method": "tfidf-svm", "grid": ONE_SVM}
    assert key(systems=[{**svm, "name": "svm", "tasks": ["fine"]}]) == base  # selection fields only
    assert key(systems=[{**svm, "params": {"ngram_min": 2}}]) != base
    assert key(systems=[{**svm, "grid": {**ONE_SVM, "C": [0.5]}}]) != base
    assert key(n_boot=51) != base
    assert key(seeds=[0, 1]) == base  # seed 0 is still the same step
    (data_dir / "fine" / "train.tsv").write_text(
        (data_dir / "fine" / "train.tsv").read_text(encoding="utf-8") + "再加一条\t3\n", encoding="utf-8")
    assert key() != base


def test_step_key_follows_the_source_code_and_cv_settings(tmp_path, data_dir, monkeypatch):
    from llm_aug.experiment import matrix

    res = load_config(make_config(tmp_path, data_dir))
    step = next(s for s in expand(res) if s.id == "fine/svm/original/s0")
    base = step_key(step, res, FileHashes())
    assert len(matrix.source_digest()) == 64
    monkeypatch.setattr(matrix, "source_digest", lambda: "0" * 64)  # as if one source file had changed
    assert step_key(step, res, FileHashes()) != base
    monkeypatch.undo()
    res = load_config(make_config(tmp_path, data_dir, cv={"folds": 3, "repeats": 1}))
    steps = {s.id: s for s in expand(res)}
    assert step_key(steps["fine/svm/original/s0"], res, FileHashes()) != base
    # CV runs on the original set only: an augmented set's step keeps its key and has no CV.
    assert steps["fine/svm/original/s0"].cv == {"folds": 3, "repeats": 1} and steps["fine/svm/more/s0"].cv is None


def test_data_dir_defaults_to_shared_beside_the_repo(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("LLM_AUG_DATA_DIR", raising=False)
    repo = tmp_path / "repo"
    write(repo / "pyproject.toml", "")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    data_dir.rename(tmp_path / "shared" / "data" / "sos1k")
    cfg = {"tasks": ["fine"], "systems": [{"name": "m", "method": "majority"}]}
    write(repo / "experiments" / "a.yaml", yaml.safe_dump(cfg))
    assert load_config(repo / "experiments" / "a.yaml").data_dir == (tmp_path / "shared/data/sos1k").resolve()
    write(repo / "experiments" / "b.yaml", yaml.safe_dump({**cfg, "data_dir": "../shared/data/sos1k"}))
    assert load_config(repo / "experiments" / "b.yaml").data_dir == (tmp_path / "shared/data/sos1k").resolve()


def test_fixed_params_leave_the_grid():
    from llm_aug.experiment.config import ClassifierSystem

    spec = search_spec(ClassifierSystem(name="s", method="tfidf-svm", params={"C": 1.0, "ngram_max": 3}))
    assert set(spec.grid) == {"class_weight"} and len(spec.candidates()) == 2


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
    ({"systems": [{"name": "x", "method": "nope"}]}, "unknown method 'nope'"),
    ({"systems": [{"name": "x", "method": "majority", "colour": 1}]}, "colour: Extra inputs"),
    ({"systems": [{"name": "x", "method": "majority", "train_sets": ["zzz"]}]}, "unknown train set(s) zzz"),
    ({"train_sets": {"fine": {"gone": "aug/missing.tsv"}}}, "missing.tsv"),
    ({"eval_split": "test"}, "fine eval split: file not found"),
    ({"cv": {"folds": 3, "systems": ["ghost"]}}, "cv.systems: ghost is not a classifier system"),
    ({"cv": {"folds": 1}}, "cv.folds"),
    ({"cv": {"systems": ["b"]}, "systems": [{"name": "b", "method": "bert"}]}, "b early-stops on val"),
    ({"systems": [{"name": "x", "kind": "llm", "backend": {"kind": "warp"}}]}, "LLM settings"),
])
def test_config_errors_are_one_line(tmp_path, data_dir, change, message):
    with pytest.raises(UserError) as err:
        load_config(make_config(tmp_path, data_dir, **change))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_rerun_computes_nothing_and_new_rows_only_themselves(tmp_path, data_dir, monkeypatch):
    fits, out = count_fits(monkeypatch), tmp_path / "out"
    path = make_config(tmp_path, data_dir)
    run = run_experiment(load_config(path), out)
    assert run["counts"]["computed"] == 5 and fits[0] == 5  # one grid candidate per step
    assert json.loads((out / "results/fine/svm/more/s0/results.json").read_text())["timing"]["fit_seconds"] >= 0

    fits[0] = 0
    run = run_experiment(load_config(path), out)
    assert run["counts"] == {**run["counts"], "computed": 0, "cached": 5} and fits[0] == 0

    systems = yaml.safe_load(path.read_text())["systems"]
    path = make_config(tmp_path, data_dir, systems=systems + [
        {"name": "lr", "method": "tfidf-lr", "train_sets": ["original"], "tasks": ["binary"],
         "grid": {"C": [1.0], "class_weight": ["balanced"], "ngram_max": [3]}}])
    run = run_experiment(load_config(path), out)
    assert run["counts"]["computed"] == 1 and run["counts"]["cached"] == 5 and fits[0] == 1


def test_only_and_dry_run_plan(tmp_path, data_dir):
    res = load_config(make_config(tmp_path, data_dir))
    run = run_experiment(res, tmp_path / "out", only="binary/*")
    assert run["counts"]["computed"] == 2 and run["counts"]["not-selected"] == 3
    statuses = {s.id: status for s, _, _, status in plan(res, tmp_path / "out")}
    assert statuses["binary/svm/original/s0"] == "cached"
    assert statuses["fine/svm/more/s0"] == "to-compute"


def test_failed_step_is_recorded_and_leaves_no_folder(tmp_path, data_dir):
    path = make_config(tmp_path, data_dir, tasks=["fine"], systems=[
        {"name": "majority", "method": "majority", "train_sets": ["original"]},
        {"name": "broken", "method": "tfidf-svm", "params": {"no_such_param": 1}, "train_sets": ["original"]}])
    out = tmp_path / "out"
    run = run_experiment(load_config(path), out)
    assert run["counts"]["computed"] == 1 and run["counts"]["failed"] == 1
    failed = next(s for s in run["steps"] if s["status"] == "failed")
    assert "no_such_param" in failed["reason"]
    assert not (out / "results/fine/broken").exists() or not any((out / "results/fine/broken").rglob("*.json"))
    assert not list(out.rglob("*.tmp-*"))


def test_llm_steps_fake_backend_and_unavailable_backend(tmp_path, data_dir):
    path = make_config(tmp_path, data_dir, tasks=["fine"], systems=[
        {"name": "majority", "method": "majority", "train_sets": ["original"]},
        {"name": "zs", "kind": "llm", "backend": {"kind": "fake", "replies": ['{"level": 4}']}, "limit": 10},
        {"name": "fs", "kind": "llm", "shots": 2, "backend": {"kind": "fake", "replies": ["7"]}},
        {"name": "gone", "kind": "llm", "backend": {"kind": "llamacpp", "model_path": str(tmp_path / "x.gguf")}},
    ])
    out = tmp_path / "out"
    run = run_experiment(load_config(path), out)
    by_id = {s["id"]: s for s in run["steps"]}
    assert by_id["fine/gone/zero-shot/s0"]["status"] == "skipped"
    assert "LLM backend unavailable" in by_id["fine/gone/zero-shot/s0"]["reason"]
    zs = json.loads((out / "results/fine/zs/zero-shot/s0/results.json").read_text())
    assert zs["n"] == 10 and zs["usage"]["prompt_tokens"] > 0 and zs["timing"]["predict_seconds"] >= 0
    fs = json.loads((out / "results/fine/fs/original/s0/results.json").read_text())
    assert fs["n"] == 33 and fs["accuracy"] > 0
    report = write_report(out)["markdown"].read_text(encoding="utf-8")
    assert "skipped" in report and "LLM backend unavailable" in report
    assert "| zs | zero-shot | VAL | 10 / 1 |" in report


def test_report_has_paper_rows_every_system_and_no_external_links(tmp_path, data_dir):
    out = tmp_path / "out"
    run_experiment(load_config(make_config(tmp_path, data_dir, seeds=[0, 1])), out)
    paths = write_report(out)
    md = paths["markdown"].read_text(encoding="utf-8")
    page = paths["html"].read_text(encoding="utf-8")
    for text in ("88.39", "50.89", "+4.65", "arXiv:2404.12659", "TEST (reported)", "| VAL |", " ± "):
        assert text in md, text
    for system in ("| majority | original |", "| svm | original |", "| svm | more |"):
        assert system in md, system
    assert "reference" in md and "MAE" in md and "QWK" in md and "within ±1" in md
    assert page.count("data:image/png;base64,") >= 6
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert FONT_STACK in page


def test_cv_column_summary_and_readme_block(tmp_path, data_dir):
    out = tmp_path / "out"
    run_experiment(load_config(make_config(tmp_path, data_dir, cv={"folds": 3, "repeats": 2})), out)
    cv = json.loads((out / "results/fine/svm/original/s0/results.json").read_text())["cv"]
    n_train_val = sum(len((data_dir / "fine" / f"{s}.tsv").read_text().splitlines()) - 1 for s in ("train", "val"))
    assert len(cv["scores"]) == 6 and cv["n"] == n_train_val and 0 < cv["mean"] <= 1
    assert "cv" not in json.loads((out / "results/fine/svm/more/s0/results.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nbefore\n<!-- experiment-results:begin -->\nold table\n"
                      "<!-- experiment-results:end -->\nafter\n", encoding="utf-8")
    paths = write_report(out, readme)
    assert "CV weighted F1 (train+val, 3-fold x2)" in paths["markdown"].read_text(encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.startswith("# T\n\nbefore\n") and text.endswith("after\n")
    block = text.split("<!-- experiment-results:begin -->")[1].split("<!-- experiment-results:end -->")[0]
    assert block.strip() == paths["summary"].read_text(encoding="utf-8").strip()
    assert f"{cv['mean'] * 100:.1f} ± {cv['std'] * 100:.1f}" in block and "50.89" in block and "88.39" in block
    assert "| svm | more |" in block and "| svm | 100.0" in block  # augmentation table and the summary row
    write_report(out, readme)
    assert readme.read_text(encoding="utf-8") == text  # idempotent
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(UserError, match="experiment-results:begin"):
        write_report(out, readme)


def test_readme_results_block_is_the_commands_output():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- experiment-results:begin -->")[1].split("<!-- experiment-results:end -->")[0]
    assert block.strip().startswith("Produced by `llm-aug experiment report` from the run of sos1k.yaml")
    assert "| stack (default of `llm-aug train`) |" in block and "CV weighted F1" in block


def test_test_split_scoring_still_selects_on_val(tmp_path, data_dir):
    # A stand-in "held-out" file: the demo test posts, which no step may train or select on.
    for task in ("fine", "binary"):
        text = (DEMO / "test.tsv").read_text(encoding="utf-8")
        if task == "binary":
            lines = text.splitlines()
            text = "\n".join([lines[0]] + [f"{t}\t{int(int(y) >= 6)}" for t, y in (ln.rsplit("\t", 1) for ln in lines[1:])]) + "\n"
        write(data_dir / task / "test.tsv", text)
    path = make_config(tmp_path, data_dir, cv={"folds": 3, "repeats": 1})
    val_run, test_run = tmp_path / "val", tmp_path / "test"
    run_experiment(load_config(path), val_run)
    run_experiment(load_config(path, eval_split="test"), test_run)
    step = "results/fine/svm/original/s0/results.json"
    on_val, on_test = (json.loads((d / step).read_text()) for d in (val_run, test_run))
    n_test = len((DEMO / "test.tsv").read_text(encoding="utf-8").splitlines()) - 1
    assert on_test["eval_split"] == "test" and on_test["n"] == n_test
    # Same choice and the same CV: neither looked at the test file.
    assert on_test["selection"] == on_val["selection"] and on_test["cv"]["scores"] == on_val["cv"]["scores"]
    summary = write_report(test_run)["summary"].read_text(encoding="utf-8")
    assert "TEST weighted F1 [95% CI]" in summary


@pytest.mark.parametrize("change, message", [
    ({"systems": [{"name": "x", "method": "nope"}]}, "unknown method 'nope'"),
    ({"train_sets": {"fine": {"gone": "aug/missing.tsv"}}}, "file not found"),
    ({"typo_key": 3}, "typo_key: Extra inputs are not permitted"),
])
def test_cli_config_errors_are_user_errors(tmp_path, data_dir, change, message):
    # One line on stderr and exit code 2 is the entry point's job: tests/test_cli.py.
    res = invoke("experiment", "run", make_config(tmp_path, data_dir, **change), "--out", tmp_path / "o")
    assert isinstance(res.exception, UserError) and message in str(res.exception)
    assert not (tmp_path / "o" / "run.json").exists()


@pytest.mark.slow
def test_ci_config_end_to_end_through_the_cli(sos1k_dir, tmp_path):
    out = tmp_path / "ci"
    assert_ok(invoke("experiment", "run", REPO / "experiments" / "ci.yaml", "--out", out, "--data-dir", sos1k_dir))
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["computed"] == len(run["steps"]) == 8
    md, page = (out / "report.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")
    for label in ("majority", "tfidf-svm", "stack", "paper-llms-g-1"):
        assert f"| {label} |" in md and label in page
    assert "88.39" in md and "50.89" in md
    # ci.yaml's screening: val cross-fitted over 5 folds, a guaranteed threshold per recall target
    svm = json.loads((out / "results/fine/tfidf-svm/original/s0/results.json").read_text())["screening"]
    assert svm["cross_fit"]["folds"] == 5 and svm["n"] == 200 and [op["name"] for op in svm["operating_points"]] \
        == ["recall>=0.9", "recall>=0.95"] and all(op["valid"] for op in svm["operating_points"])
    assert md.count("### Risk screening") == 2 and (out / "report_files" / "fine_reliability.png").is_file()
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "CV weighted F1 (train+val, 3-fold x1)" in summary and "| stack (default of `llm-aug train`) |" in summary

    res = assert_ok(invoke("experiment", "run", REPO / "experiments" / "ci.yaml", "--out", out,
                           "--data-dir", sos1k_dir))
    again = json.loads((out / "run.json").read_text())
    assert again["counts"]["computed"] == 0 and again["counts"]["cached"] == 8
    assert "0 computed, 8 cached" in res.stdout

    assert_ok(invoke("experiment", "report", "--out", out))
    assert (out / "report.html").is_file()


def test_test_split_run_filters_every_training_set_against_the_eval_split(tmp_path, data_dir):
    # A synthetic "held-out" split: the demo test posts, plus an exact copy (up to punctuation)
    # and a wrapped near-copy of two training posts; no real test split is read. The augmented
    # set "more" also holds a synthetic row (not in train) that is a near-copy of a test post.
    train = [ln.rsplit("\t", 1) for ln in (DEMO / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    (exact, y1), (near, y2) = train[10], train[20]
    test_rows = [ln.rsplit("\t", 1) for ln in (DEMO / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    victim, y3 = test_rows[0]
    test = (DEMO / "test.tsv").read_text(encoding="utf-8") + f"{exact}！！\t{y1}\n说真的，{near}唉。\t{y2}\n"
    write(data_dir / "fine" / "test.tsv", test)
    more = data_dir / "aug" / "more.tsv"
    more.write_text(more.read_text(encoding="utf-8") + f"唉，{victim}，真的\t{y3}\n", encoding="utf-8")
    path = make_config(tmp_path, data_dir, tasks=["fine"], systems=[
        {"name": "svm", "method": "tfidf-svm", "grid": ONE_SVM},
        {"name": "fs", "kind": "llm", "shots": 2, "backend": {"kind": "fake", "replies": ["7"]}}])
    out = tmp_path / "test"
    run_experiment(load_config(path, eval_split="test"), out)
    n = {"original": len(train), "more": len(train) + 6}
    # The exact copy goes everywhere; the real post near a test post stays (counted), the
    # synthetic near-copy goes.
    for step, rows, removed, near in (("svm/original", n["original"], 1, 0), ("svm/more", n["more"], 2, 1),
                                      ("fs/original", n["original"], 1, 0)):
        res = json.loads((out / f"results/fine/{step}/s0/results.json").read_text())
        info = res["train_filter"]
        assert (info["against"], info["rows"], info["removed"], info["exact"], info["near"], info["near_kept"]) \
            == ("test", rows, removed, 1, near, 1)
        assert res["n_train"] == rows - removed
    paths = write_report(out)
    md, page = paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    assert "### Training rows removed as copies of TEST posts" in md and "removed as copies of TEST posts" in page
    assert f"| original | {n['original']} | 1 | 1 | 0 | 1 | {n['original'] - 1} |" in md
    assert f"| more | {n['more']} | 2 | 1 | 1 | 1 | {n['more'] - 2} |" in md
    assert "filtered against the TEST split" in paths["summary"].read_text(encoding="utf-8")
    # Scored on val, nothing is filtered (selection data stays as it is) and the report says nothing.
    run_experiment(load_config(path), tmp_path / "val")
    assert "train_filter" not in json.loads((tmp_path / "val/results/fine/svm/original/s0/results.json").read_text())
    assert "removed as copies" not in write_report(tmp_path / "val")["markdown"].read_text(encoding="utf-8")
