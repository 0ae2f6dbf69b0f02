"""Shared fixtures: paths to the demo corpus and the SOS-1K development copy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The loopback server (llm_server) and recombined posts (realtext) live in bench/, which
# runs them too; appended, so nothing in bench/ shadows an installed module.
sys.path.append(str(REPO / "bench"))
DEMO = REPO / "examples" / "demo"
SOS1K = REPO.parent / "shared" / "data" / "sos1k"


@pytest.fixture
def demo_dir() -> Path:
    return DEMO


@pytest.fixture
def sos1k_dir() -> Path:
    if not (SOS1K / "fine" / "train.tsv").is_file():
        pytest.skip(f"SOS-1K development copy not found at {SOS1K}")
    return SOS1K


def write(path: Path, text: str | bytes) -> Path:
    """Write a small test file (str as UTF-8, bytes as given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
