"""Resumable JSONL result files: the rows a run appends as they finish.

:class:`ResultsFile` is the JSONL file a run appends rows to as they finish; a rerun
after a crash keeps its finished rows and never writes an id twice. The answers
themselves are kept by the request cache (:mod:`llm_aug.llm.cache`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Iterable, Mapping, Sequence

import jsonlines

from llm_aug.core.errors import DataError
from llm_aug.core.files import DiskFull, atomic_write, disk_full_message, is_disk_full
from llm_aug.llm.types import ResultRow

logger = logging.getLogger(__name__)


def _dumps(row: ResultRow | dict) -> str:
    # pydantic's own serializer: compact, UTF-8 kept, several times faster than json.dumps.
    if isinstance(row, ResultRow):
        return row.model_dump_json()
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


class ResultsFile:
    """A JSONL results file that survives kill -9: append as rows finish, rewrite at the end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None
        self._writer: jsonlines.Writer | None = None
        self._disk_full = False
        self._lines: dict[str, tuple[ResultRow, str]] = {}  # id -> (row, its line as appended)

    @staticmethod
    def read_rows(path: str | Path) -> tuple[list[ResultRow], bool]:
        """Rows of a results file and whether it needs repair (a truncated last line).

        Only the last line may be cut short (a crash mid-write); a bad line elsewhere
        is a :class:`DataError`.
        """
        path = Path(path)
        if not path.exists():
            return [], False
        lines = path.read_text(encoding="utf-8").split("\n")
        rows, repair = [], bool(lines[-1])  # no final newline: the last write was cut
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(ResultRow.model_validate_json(line))
            except ValueError as exc:
                if number < len(lines):  # a complete line (newline follows): corruption
                    raise DataError(f"{path}:{number}: not a result row: {exc}") from exc
                repair = True
                logger.info("%s: dropping a truncated last line", path)
        return rows, repair

    @classmethod
    def peek(cls, path: str | Path, keys: Mapping[str, str], retry_failed: bool) -> set[str]:
        """Ids a resumed run would keep, without touching the file."""
        rows, _ = cls.read_rows(path)
        return set(_keep(rows, keys, retry_failed))

    def resume(self, keys: Mapping[str, str], *, retry_failed: bool = True) -> dict[str, ResultRow]:
        """Keep finished rows whose id and request hash match ``keys``; open for appending.

        Rows for other ids, stale requests (the prompt changed) and, with
        ``retry_failed``, failed rows are dropped from the file before anything is appended,
        so no id is ever in the file twice.
        """
        rows, repair = self.read_rows(self.path)
        kept = _keep(rows, keys, retry_failed)
        if repair or len(kept) != len(rows):
            self._rewrite(list(kept.values()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._writer = jsonlines.Writer(self._fh, flush=True, dumps=self._dump_line)
        return kept

    def _dump_line(self, row: ResultRow | dict) -> str:
        """``_dumps``, keeping each appended row's line for ``finalize`` to reuse."""
        line = _dumps(row)
        if isinstance(row, ResultRow):
            self._lines[row.id] = (row, line)
        return line

    def _line(self, row: ResultRow) -> str:
        kept = self._lines.get(row.id)
        return kept[1] if kept is not None and kept[0] is row else _dumps(row)

    def append(self, row: ResultRow) -> None:
        """Write one finished row (flushed, so a killed process keeps it).

        A full disk is :class:`~llm_aug.core.files.DiskFull` naming this file: the rows
        before are kept, a cut last line is dropped when the run resumes.
        """
        assert self._writer is not None, "call resume() first"
        try:
            self._writer.write(row)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self._disk_full = True
            raise DiskFull(disk_full_message(exc, self.path)) from None

    def finalize(self, order: Sequence[str], rows: Mapping[str, ResultRow]) -> None:
        """Rewrite the file with ``rows`` in ``order`` (input order), atomically."""
        self.close()
        self._rewrite([rows[i] for i in order if i in rows])

    def close(self) -> None:
        """Close the file; after a full disk, the cut line that cannot be flushed is let go."""
        if self._fh is None:
            return
        try:
            self._fh.close()
        except OSError as exc:
            if not (self._disk_full and is_disk_full(exc)):
                raise
        finally:
            self._fh = self._writer = None

    def _rewrite(self, rows: Sequence[ResultRow]) -> None:
        # No fsync, like the appends: the rename is atomic for a killed process,
        # and the request cache still holds every answer.
        # Rows appended in this run are not serialised again: their lines are kept (a row
        # is never changed once appended, and a different object for an id is dumped anew).
        atomic_write(self.path, lambda fh: fh.writelines(self._line(r) + "\n" for r in rows), fsync=False)


def _keep(rows: Iterable[ResultRow], keys: Mapping[str, str],
          retry_failed: bool) -> dict[str, ResultRow]:
    kept: dict[str, ResultRow] = {}
    for row in rows:
        if keys.get(row.id) == row.request_hash and not (retry_failed and row.error):
            kept[row.id] = row
    return kept
