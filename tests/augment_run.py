"""A real ``augment`` run for tests: EDA/synonym rewrites of the demo corpus (offline, no LLM)."""

from __future__ import annotations

import shutil
from pathlib import Path

from clirun import assert_ok, invoke
from conftest import DEMO


def make_run(root: Path, *, balance: str = "12", train: Path = DEMO / "train.tsv",
             protect: Path = DEMO / "val.tsv", extra: tuple[str, ...] = ()) -> Path:
    """``llm-aug augment --method eda`` into ``root/run``; returns the run folder."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(train, root / "train.tsv")
    shutil.copy(protect, root / "val.tsv")
    assert_ok(invoke("augment", "--method", "eda", "--task", "fine", "--train", root / "train.tsv",
                     "--protect", root / "val.tsv", "--balance", balance, "--out", root / "run", *extra))
    return root / "run"
