"""The package layering contracts (import-linter, pyproject.toml) hold, and they can fail."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("importlinter") is None,
                                reason="import-linter is not installed (dev extra)")


def _tool():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import lint_imports
    finally:
        sys.path.pop(0)
    return lint_imports


def test_contracts_hold_on_this_tree(capfd):
    assert _tool().main([]) == 0, capfd.readouterr().out


def test_a_forbidden_arrow_breaks_the_build(tmp_path, capfd):
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("llm_aug", "classifiers", "eval", "prompts"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # The LLM runtime reaching up into eval: exactly what the contract forbids.
    (tmp_path / "llm_aug" / "llm" / "bad_arrow.py").write_text("from llm_aug.eval import metrics\n")
    assert _tool().main([], root=tmp_path) != 0
    assert "BROKEN" in capfd.readouterr().out.upper()
