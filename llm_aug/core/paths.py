"""Checks on where a job will write, run before anything is spent.

Every job that pays for requests or trains a model first calls :func:`check_outputs`:
an output that cannot be written, an output of the wrong kind (a directory where a
file goes, or the reverse), an output that is one of the job's inputs, or a request
cache that is not a usable SQLite database would otherwise fail, or destroy data,
after the work was done. Each problem is one :class:`~llm_aug.core.errors.UserError`
line.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterable

from llm_aug.core.errors import DataError, UserError

SQLITE_HEADER = b"SQLite format 3\x00"
PathLike = str | os.PathLike[str]


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (through links and relative parts too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the names
        return Path(a).resolve() == Path(b).resolve()


def check_writable_dir(directory: Path, what: str) -> None:
    """Refuse when ``directory`` cannot be created or written (its nearest existing ancestor decides).

    ``what`` names what is to be written there, for the message.
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {what}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what}: {existing} is not writable")


def check_output_file(path: Path, what: str = "output") -> None:
    """Refuse a file output that is a directory or cannot be written."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory; give a file name")
    check_writable_dir(path.parent, f"{what} {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{what} {path} is not writable")


def check_output_dir(path: Path, what: str = "output directory") -> None:
    """Refuse a directory output that is an existing file or cannot be written."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is an existing file; give a directory")
    check_writable_dir(path, f"{what} {path}")


def check_sqlite_file(path: Path, *, thorough: bool = True) -> None:
    """Refuse a file that is not a SQLite database or (``thorough``: quick_check) is corrupt.

    A missing or empty file passes: SQLite creates the database there.
    """
    if path.is_dir():
        raise DataError(f"request cache {path} is a directory; give a file name")
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise DataError(f"request cache {path} is not a SQLite database; give another --cache path")
    if not thorough:
        return
    db = sqlite3.connect(path, timeout=30.0)
    try:
        verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise DataError(f"request cache {path} is unreadable ({exc}); give another --cache path") from None
    finally:
        db.close()
    if verdict != "ok":
        first = str(verdict).replace("\n", " ")[:160]
        raise DataError(f"request cache {path} is corrupt ({first}); give another --cache path")


def _check_not_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    for out in outputs:
        for source in inputs:
            if same_file(out, source):
                raise UserError(f"output {out} is also an input ({source}): it would be overwritten; "
                                "write somewhere else")


def check_outputs(*, output: PathLike | None = None, out_dir: PathLike | None = None,
                  inputs: Iterable[PathLike | None] = (), writes: Iterable[str] = (),
                  cache: PathLike | None = None) -> None:
    """All checks of a job's outputs, before it reads, requests or trains anything costly.

    ``output``: a file the job writes; ``out_dir``: a directory it writes ``writes`` (file
    names) into; ``inputs``: files it reads, none of which may be overwritten (``None``
    entries are skipped); ``cache``: its SQLite request cache, if any.
    """
    sources = [Path(p) for p in inputs if p is not None]
    targets: list[Path] = []
    if output is not None:
        check_output_file(Path(output))
        targets.append(Path(output))
    if out_dir is not None:
        check_output_dir(Path(out_dir))
        targets += [Path(out_dir)] + [Path(out_dir) / name for name in writes]
    _check_not_inputs(targets, sources)
    if cache is not None:
        cache = Path(cache)
        if any(same_file(cache, t) for t in targets):
            raise UserError(f"request cache {cache} is also an output; give another --cache path")
        check_output_file(cache, "request cache")
        check_sqlite_file(cache)
