"""File names shared between commands, and writes that never leave a half-written file."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence, TextIO

from llm_aug.core.errors import UserError

PREDICTIONS_FILE = "predictions.jsonl"
RESULTS_FILE = "results.json"
CONFUSION_FILE = "confusion.png"
MANIFEST_FILE = "manifest.json"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _read_umask() -> int:
    mask = os.umask(0o022)  # the umask can only be read by setting it
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # once, at import: setting it for a moment is unsafe with threads


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (for manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def data_digest(path: str | Path) -> str:
    """A data file's sha256; for an ``hf:`` dataset, of its local folder's files or, for a hub
    id (which the manifest cannot hash offline), ``hub``."""
    if str(path).startswith("hf:") and not Path(path).is_file():
        source = str(path)[3:]
        folder = next((Path(s) for s in (source, source.rpartition(":")[0]) if s and Path(s).is_dir()), None)
        if folder is None:
            return "hub"
        digest = hashlib.sha256()
        for file in sorted(f for f in folder.rglob("*") if f.is_file()):
            digest.update(f"{file.relative_to(folder).as_posix()}\0{file_sha256(file)}\n".encode())
        return f"folder:{digest.hexdigest()}"
    return file_sha256(path)


class DiskFull(UserError):
    """No space (or quota) left for an output; nothing half-written was left at its path."""


def is_disk_full(exc: BaseException) -> bool:
    """True for an ``OSError`` saying the disk is full or the quota spent."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def disk_full_message(exc: OSError, path: str | Path | None = None) -> str:
    """The one line for a full disk: what could not be written, and what to do."""
    where = path or exc.filename
    target = f"cannot write {where}" if where else "cannot write an output"
    return (f"{target}: {exc.strerror or 'no space left on device'}; free some space or write "
            "elsewhere, then rerun the same command")


def atomic_write(path: Path, write: Callable[[TextIO], None], *, fsync: bool = True) -> None:
    """Write ``path`` through ``write(fh)`` into a temp file, then rename over it.

    A crash leaves either the old file or the new one, never a torn one. ``fsync=False``
    skips the flush to disk: still atomic for a killed process, not for a power cut.
    A full disk is :class:`DiskFull` (one line), the temp file removed.
    """
    _atomic(path, write, "w", fsync)


def atomic_write_binary(path: Path, write: Callable[[BinaryIO], None], *, fsync: bool = True) -> None:
    """:func:`atomic_write` for bytes (``write`` gets a binary file, e.g. for pickle)."""
    _atomic(path, write, "wb", fsync)


def atomic_write_all(files: Sequence[tuple[Path, Callable[[TextIO], None]] | tuple[Path, Callable[[Any], None], str]],
                     *, fsync: bool = True) -> None:
    """:func:`atomic_write` of several files that belong together: all are written to temp
    files first and renamed only once every one is complete, so a full disk or a crash
    while writing leaves none of the new ones. An entry ``(path, write, "wb")`` gets a
    binary file (Parquet), the others text."""
    temps: list[Path] = []
    try:
        for path, write, *mode in files:
            temps.append(_write_temp(Path(path), write, mode[0] if mode else "w", fsync))
        for tmp, (path, *_) in zip(temps, files):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _atomic(path: Path, write: Callable[[Any], None], mode: str, fsync: bool) -> None:
    tmp = _write_temp(Path(path), write, mode, fsync)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_temp(path: Path, write: Callable[[Any], None], mode: str, fsync: bool) -> Path:
    """A temp file beside ``path`` holding what ``write`` wrote; removed again if that fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get open()'s usual mode
        text = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException as exc:
        Path(name).unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(disk_full_message(exc, path)) from None  # type: ignore[arg-type]
        raise
    return Path(name)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of one string."""
    atomic_write(path, lambda fh: fh.write(text))
