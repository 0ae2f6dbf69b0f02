"""Every package folder is listed in pyproject.toml: a non-editable install ships only those."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def _listed() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def _on_disk() -> set[str]:
    pkg = ROOT / "llm_aug"
    found = set()
    for folder, _, files in os.walk(pkg, followlinks=True):  # classifiers/, eval/, prompts/ are symlinks
        if "__init__.py" in files:
            found.add(".".join(("llm_aug", *Path(folder).relative_to(pkg).parts)))
    return found


def test_every_package_folder_is_listed() -> None:
    missing = _on_disk() - _listed()
    assert not missing, f"package folders missing from [tool.setuptools] packages: {sorted(missing)}"


def test_every_listed_package_exists() -> None:
    assert not _listed() - _on_disk()
