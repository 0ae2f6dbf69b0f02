"""Help screens and terminal output say what the commands do.

Flags read as flags (no ``<bool>``), ``train --method`` lists the registry's methods
and default, and ``evaluate`` prints precision/recall, a per-class table and where
results.json and confusion.png went.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from clirun import assert_ok, invoke
from llm_aug.classifiers.registry import DEFAULT_METHOD, METHODS
from llm_aug.cli import app
from llm_aug.cli.models import method_help
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.jobs.evaluate import format_results


def command_paths(command, path=()):
    """Every command path of the CLI, the root included."""
    yield list(path)
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from command_paths(sub, (*path, name))


PATHS = list(command_paths(get_command(app)))


def help_text(path: list[str]) -> str:
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert res.exit_code == 0, res.output
    return res.output


def test_every_command_is_checked():
    assert {"evaluate", "classify", "augment", "data stats", "prompts compare", "experiment run"} <= {
        " ".join(p) for p in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "llm-aug" for p in PATHS])
def test_help_shows_flags_as_flags(path):
    text = help_text(path)
    assert "<bool>" not in text and "<list[" not in text, text
    help_line = next(line for line in text.splitlines() if "--help" in line and "Show this message" in line)
    assert not re.search(r"<\w+>", help_line), help_line


def test_flag_and_repeatable_option_rows():
    evaluate = help_text(["evaluate"])
    json_line = next(line for line in evaluate.splitlines() if "--json" in line)
    assert not re.search(r"<\w+>", json_line), json_line
    train = help_text(["train"])
    set_line = next(line for line in train.splitlines() if "--set" in line and "KEY=VALUE" in line)
    assert "<str>" in set_line, set_line


def test_train_method_help_comes_from_the_registry():
    text = method_help()
    assert all(name in text for name in METHODS), text
    assert all(f"Default: {m}" in text or f"{m} ({t})" in text for t, m in DEFAULT_METHOD.items()), text
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text(["train"])).split())
    assert f"One of: {', '.join(METHODS)}." in flat, flat


def test_dry_run_help_says_what_it_prints():
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text(["classify"])).split())
    assert "Print a JSON estimate" in flat and "nothing is called" in flat, flat


def _predictions(gold: Path, path: Path, every: int = 3) -> Path:
    data = load_dataset(gold, scheme_for_task("fine"))
    with path.open("w", encoding="utf-8") as f:
        for i, (id_, label) in enumerate(zip(data.ids, data.labels)):
            pred = (label + 1) % 11 if i % every == 0 else label
            f.write(json.dumps({"id": id_, "pred": pred}) + "\n")
    return path


def test_evaluate_terminal_output(demo_dir, tmp_path):
    preds = _predictions(demo_dir / "val.tsv", tmp_path / "preds.jsonl")
    out = tmp_path / "scores"
    res = assert_ok(invoke("evaluate", preds, "--gold", demo_dir / "val.tsv", "--n-boot", "20", "--out", out))
    lines = res.stdout.strip().splitlines()
    for key in ("accuracy", "weighted_f1", "macro_f1", "weighted_precision", "weighted_recall",
                "macro_precision", "macro_recall", "mae", "qwk", "within1"):
        assert any(line.split()[:1] == [key] for line in lines), (key, res.stdout)
    header = next(i for i, line in enumerate(lines) if line.split() == ["label", "precision", "recall", "f1", "support"])
    rows = lines[header + 1: header + 12]
    assert [row.split()[0] for row in rows] == [str(level) for level in range(11)], res.stdout
    assert rows[0].split()[1:3] == ["no", "suffering"] and rows[0].split()[-1] == "3"
    assert lines[-1] == f"wrote {out / 'results.json'} and {out / 'confusion.png'}"
    assert (out / "results.json").is_file() and (out / "confusion.png").is_file()


def test_evaluate_json_is_unchanged(demo_dir, tmp_path):
    preds = _predictions(demo_dir / "val.tsv", tmp_path / "preds.jsonl")
    res = assert_ok(invoke("evaluate", preds, "--gold", demo_dir / "val.tsv", "--n-boot", "0", "--json"))
    results = json.loads(res.stdout)
    assert "per_class" in results and "wrote" not in res.stdout
    assert (tmp_path / "results.json").is_file() and (tmp_path / "confusion.png").is_file()


def test_format_results_binary_block_and_missing_values():
    results = {
        "n": 4, "invalid_rate": 1.0, "accuracy": 0.0, "weighted_f1": 0.0, "macro_f1": 0.0,
        "mae": None, "qwk": None, "within1": 0.0, "ci": {},
        "weighted_precision": 0.0, "weighted_recall": 0.0, "macro_precision": 0.0, "macro_recall": 0.0,
        "per_class": {"0": {"name": "low risk", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 4}},
        "binary": {"threshold": 6, "accuracy": 0.5, "weighted_f1": 0.4, "precision": 0.25, "recall": 1.0,
                   "f1": 0.4},
    }
    text = format_results(results)
    assert "mae                n/a" in text and "wrote" not in text
    assert "binary (collapsed at level >= 6)" in text and "recall 1.0000" in text
