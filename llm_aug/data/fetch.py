"""Get the public SOS-1K files (download from the authors' repository, or copy a local copy)
and check what arrived before anyone trains on it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from llm_aug.core.errors import DataError, UserError
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import Task, scheme_for_task

log = logging.getLogger(__name__)

# The authors' repository HongzhiQ/FineGrainedSuicideDetection, pinned to the commit whose
# tree the mapping below was checked against (newest on 2026-11-29). Override with
# LLM_AUG_SOS1K_BASE_URL (a mirror, or another commit).
UPSTREAM_COMMIT = "1322c3b09bb9cc283eb840fe3b27a03d775894f4"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/HongzhiQ/FineGrainedSuicideDetection/{UPSTREAM_COMMIT}"
# local name -> path in that tree: the fold-4 split the paper trains and reports on.
# ModelTrain/data/ holds the fine-grained train, val and test files side by side (its
# val_data4.tsv has the bytes of suicideDataProcessing/data/fine-grained/fold4.tsv).
SOS1K_FILES = {
    "fine/train.tsv": "ModelTrain/data/train_data4.tsv",
    "fine/val.tsv": "ModelTrain/data/val_data4.tsv",
    "fine/test.tsv": "ModelTrain/data/test_data.tsv",
    "binary/train.tsv": "ModelTrain/twoClassData/train1-data.tsv",
    "binary/val.tsv": "ModelTrain/twoClassData/val1-data.tsv",
    "binary/test.tsv": "ModelTrain/twoClassData/testdata_twoClass.tsv",
}
EXPECTED_ROWS = {"train": 799, "val": 200, "test": 250}
TRAIN_VAL_POSTS = 999


def copy_local(source: Path, dest: Path) -> list[Path]:
    """Copy the ``fine/``, ``binary/`` and ``paper-augmented/`` TSV files of a local copy, then verify."""
    if not source.is_dir():
        raise UserError(f"{source}: not a directory")
    files = sorted(p for sub in ("fine", "binary", "paper-augmented") for p in (source / sub).glob("*.tsv"))
    if not files:
        raise UserError(f"{source}: no fine/*.tsv, binary/*.tsv or paper-augmented/*.tsv files found")
    copied = []
    for src in files:
        target = dest / src.relative_to(source)
        _atomic_copy(src, target)
        copied.append(target)
    verify(dest)
    return copied


def download(dest: Path, base_url: str | None = None, timeout: float = 30.0) -> list[Path]:
    """Download the six SOS-1K files into ``dest`` (each atomically), then verify them."""
    base = (base_url or os.environ.get("LLM_AUG_SOS1K_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    got = []
    for local, remote in SOS1K_FILES.items():
        target = dest / local
        log.info("downloading %s", remote)
        _download(f"{base}/{remote}", local, target, timeout)
        got.append(target)
    verify(dest)
    return got


def _download(url: str, local: str, target: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (https or a test's loopback)
            _atomic_stream(resp, target)
    except urllib.error.HTTPError as exc:
        hint = " (not in the upstream repository: has its layout changed?)" if exc.code == 404 else ""
        raise UserError(f"{local}: could not download {url}: HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(f"{local}: could not download {url} ({getattr(exc, 'reason', exc)}); are you "
                        "offline? Use --from DIR to copy a local copy instead") from None


def _atomic_stream(src, target: Path) -> None:
    """Copy a binary stream to ``target`` through a temp file and a rename: never half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(src, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_copy(src: Path, target: Path) -> None:
    with src.open("rb") as fh:
        _atomic_stream(fh, target)


def verify(dest: Path) -> dict[str, Dataset]:
    """Check the split files under ``dest``: labels in the scheme, row counts, shared posts.

    Each present ``fine|binary/{train,val,test}.tsv`` must load with its task's labels and
    have SOS-1K's row count; when train and val of both tasks are there, fine and binary
    must hold the same 999 posts. A mismatch is one ``DataError`` naming the file.
    """
    loaded: dict[str, Dataset] = {}
    for task in Task:
        for split, expected in EXPECTED_ROWS.items():
            path = dest / task.value / f"{split}.tsv"
            if not path.is_file():
                continue
            data = load_dataset(path, scheme_for_task(task))  # labels outside the scheme stop here
            if len(data) != expected:
                raise DataError(f"{path}: {len(data)} rows, SOS-1K's {task.value} {split} split has {expected}")
            loaded[f"{task.value}/{split}"] = data
    _check_same_posts(dest, loaded)
    return loaded


def _check_same_posts(dest: Path, loaded: dict[str, Dataset]) -> None:
    needed = ("fine/train", "fine/val", "binary/train", "binary/val")
    if not all(k in loaded for k in needed):
        return
    fine = {r.text for k in needed[:2] for r in loaded[k].rows}
    binary = {r.text for k in needed[2:] for r in loaded[k].rows}
    if fine != binary or len(fine) != TRAIN_VAL_POSTS:
        raise DataError(f"{dest / 'binary'}: binary train+val should hold the {TRAIN_VAL_POSTS} posts of fine "
                        f"train+val; {len(fine - binary)} fine posts are missing from it, "
                        f"{len(binary - fine)} are extra")
