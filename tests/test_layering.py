"""The package layering contracts (import-linter, pyproject.toml) hold, and they can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (dev extra)")


def _lint(config: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([LINT, str(config), "--no-cache"], capture_output=True, text=True, env=env,
                          cwd=pythonpath or ROOT, timeout=120)


def test_contracts_hold_on_this_tree():
    res = _lint(ROOT / "pyproject.toml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "0 broken" in res.stdout


def test_a_forbidden_arrow_breaks_the_build(tmp_path):
    # A copy of the package (links followed) with the LLM runtime reaching up into eval:
    # exactly what the contract forbids.
    shutil.copytree(ROOT / "llm_aug", tmp_path / "llm_aug", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "llm_aug" / "llm" / "bad_arrow.py").write_text("from llm_aug.eval import metrics\n")
    res = _lint(ROOT / "pyproject.toml", pythonpath=tmp_path)
    assert res.returncode != 0 and "BROKEN" in res.stdout.upper(), res.stdout[-3000:] + res.stderr[-3000:]
