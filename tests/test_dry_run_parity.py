"""Dry run and real run go through one validation path: they accept and reject the same arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import invoke
from conftest import DEMO
from llm_aug.core.errors import UserError


def _outcome(args: list[str]) -> tuple[str, str]:
    """('ok', '') or ('error', first line of the user error); anything else fails the test."""
    result = invoke(*args)
    if result.exit_code == 0:
        return "ok", ""
    if isinstance(result.exception, UserError):
        return "error", str(result.exception).splitlines()[0]
    if isinstance(result.exception, SystemExit) and result.exit_code == 2:
        return "usage", ""
    raise AssertionError(f"{args}: exit {result.exit_code}: {result.exception!r}\n{result.output}")


@pytest.fixture
def fake_replies(tmp_path: Path) -> Path:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(["等级：3"]), encoding="utf-8")
    return path


CLASSIFY_CASES = {
    "zero-shot": [],
    "few-shot prompt without --train": ["--shots", "2"],
    "zero-shot prompt with --shots": ["--shots", "2", "--prompt", "classify/scene_levels", "--train", str(DEMO / "train.tsv")],
    "generation prompt": ["--prompt", "generate/level_json.v2"],
    "binary prompt on fine": ["--prompt", "classify/binary"],
    "unknown prompt": ["--prompt", "classify/nope"],
    "unknown backend": ["--backend", "nope"],
    "remote server without --allow-remote": ["--backend", "openai", "--model", "m", "--base-url", "http://example.com/v1"],
}


@pytest.mark.parametrize("name", list(CLASSIFY_CASES))
def test_classify_dry_and_real_agree(name, tmp_path, fake_replies):
    args = ["classify", "--task", "fine", "--input", str(DEMO / "val.tsv"), "--output", str(tmp_path / "p.jsonl"),
            "--backend", "fake", "--fake-replies", str(fake_replies), *CLASSIFY_CASES[name]]
    dry, real = _outcome(args + ["--dry-run"]), _outcome(args)
    assert dry == real, f"dry run {dry} vs real run {real}"
    if name == "zero-shot":
        assert real == ("ok", "")
    else:
        assert real[0] == "error"


def test_bad_task_is_the_same_error_dry_and_real(tmp_path, fake_replies):
    args = ["classify", "--task", "nope", "--input", str(DEMO / "val.tsv"), "--output", str(tmp_path / "p.jsonl"),
            "--backend", "fake", "--fake-replies", str(fake_replies)]
    assert _outcome(args + ["--dry-run"]) == _outcome(args) == ("error", "unknown task 'nope'; use one of: fine, binary")


AUGMENT_CASES = {
    "no protect file": [],
    "protect and no-protect": ["--protect", str(DEMO / "val.tsv"), "--no-protect"],
    "bad relabel": ["--protect", str(DEMO / "val.tsv"), "--relabel", "nowhere"],
    "unknown method": ["--protect", str(DEMO / "val.tsv"), "--method", "nope"],
}


@pytest.mark.parametrize("name", list(AUGMENT_CASES))
def test_augment_dry_and_real_agree(name, tmp_path):
    extra = AUGMENT_CASES[name]
    method = [] if "--method" in extra else ["--method", "eda"]
    args = ["augment", *method, "--task", "fine", "--train", str(DEMO / "train.tsv"), "--balance", "x1.2",
            "--out", str(tmp_path / "aug"), *extra]
    dry, real = _outcome(args + ["--dry-run"]), _outcome(args)
    assert dry == real and real[0] == "error", f"dry run {dry} vs real run {real}"
