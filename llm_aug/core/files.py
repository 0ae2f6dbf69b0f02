"""File names shared between commands, and writes that never leave a half-written file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, TextIO

PREDICTIONS_FILE = "predictions.jsonl"
RESULTS_FILE = "results.json"
CONFUSION_FILE = "confusion.png"
MANIFEST_FILE = "manifest.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (for manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def atomic_write(path: Path, write: Callable[[TextIO], None], *, fsync: bool = True) -> None:
    """Write ``path`` through ``write(fh)`` into a temp file, then rename over it.

    A crash leaves either the old file or the new one, never a torn one. ``fsync=False``
    skips the flush to disk: still atomic for a killed process, not for a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of one string."""
    atomic_write(path, lambda fh: fh.write(text))
