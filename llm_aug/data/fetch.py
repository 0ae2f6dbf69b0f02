"""Get the public SOS-1K files: download from the authors' GitHub repository, or copy a local copy."""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.core.errors import UserError

log = logging.getLogger(__name__)

# The authors' repository (HongzhiQ/FineGrainedSuicideDetection). Override the base with
# LLM_AUG_SOS1K_BASE_URL (a mirror, or a fixed commit instead of the branch).
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/HongzhiQ/FineGrainedSuicideDetection/main"
# local name -> path in the repository (the fold-4 split the paper reports on).
SOS1K_FILES = {
    "fine/train.tsv": "ModelTrain/data/train_data4.tsv",
    "fine/val.tsv": "suicideDataProcessing/data/fine-grained/val_data4.tsv",
    "fine/test.tsv": "ModelTrain/back-translation-2/test_data.tsv",
    "binary/train.tsv": "ModelTrain/twoClassData/train1-data.tsv",
    "binary/val.tsv": "ModelTrain/twoClassData/val1-data.tsv",
    "binary/test.tsv": "ModelTrain/twoClassData/testdata_twoClass.tsv",
}


def _validate(path: Path) -> None:
    task = path.parent.name
    if task in ("fine", "binary"):
        load_dataset(path, scheme_for_task(task))


def copy_local(source: Path, dest: Path) -> list[Path]:
    """Copy the ``fine/``, ``binary/`` and ``paper-augmented/`` TSV files of a local copy."""
    if not source.is_dir():
        raise UserError(f"{source}: not a directory")
    files = sorted(p for sub in ("fine", "binary", "paper-augmented") for p in (source / sub).glob("*.tsv"))
    if not files:
        raise UserError(f"{source}: no fine/*.tsv, binary/*.tsv or paper-augmented/*.tsv files found")
    copied = []
    for src in files:
        target = dest / src.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        _validate(target)
        copied.append(target)
    return copied


def _download(url: str, target: Path, timeout: float) -> None:
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as fh:  # noqa: S310
            shutil.copyfileobj(resp, fh)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"could not download {url} ({getattr(exc, 'reason', exc)}); are you offline? "
            "Use --from DIR to copy a local copy instead"
        ) from None
    tmp.replace(target)


def download(dest: Path, base_url: str | None = None, timeout: float = 30.0) -> list[Path]:
    """Download the SOS-1K splits into ``dest`` and check that each one parses."""
    base = (base_url or os.environ.get("LLM_AUG_SOS1K_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    got = []
    for local, remote in SOS1K_FILES.items():
        target = dest / local
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s", remote)
        _download(f"{base}/{remote}", target, timeout)
        _validate(target)
        got.append(target)
    return got
