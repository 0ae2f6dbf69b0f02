"""Read TSV, CSV, JSONL and Parquet files as (line, record) pairs, one row per line.

TSV fields are literal text split on tabs (posts contain quotes): a quote never joins
lines, and only a field wholly in CSV quotes (``"..."`` with inner ``""``, as pandas
writes it) is unquoted. CSV keeps its quoting, but a quoted field that runs past its line
(a stray ``"``) is an error naming the line where it opened, never rows silently folded
into one. Parquet (:mod:`llm_aug.data.parquet`) is read by row; its errors name the row
number where the others name the line. :mod:`llm_aug.data.io` turns records into rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from llm_aug.core.errors import DataError

logger = logging.getLogger(__name__)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes are not valid UTF-8 (at byte {exc.start})") from None


_Records = tuple[list[str], list[tuple[int, dict]], int]  # header, (line, record)s, data lines


def _unquote(field: str) -> str:
    """``field`` without CSV quoting when it is wholly and validly quoted, else as it is.

    A CSV writer (pandas, :func:`write_tsv`) quotes a field that holds ``"`` as
    ``"..."`` with inner quotes doubled; SOS-1K has such fields. Anything else (a stray
    ``"`` at the start of a post, say) is literal text.
    """
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        inner = field[1:-1]
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    return field


def _records_tsv(path: Path, text: str) -> _Records:
    """One row per line, fields split on tabs: quotes never join lines or tabs."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(f"{path}: file is empty (no header row)")
    header = [_unquote(f) for f in lines[0].rstrip("\r").split("\t")]
    records = []
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) != len(header):
            raise DataError(f"{path}:{number}: expected {len(header)} fields, found {len(values)}")
        records.append((number, dict(zip(header, map(_unquote, values)))))
    return header, records, len(records)


def _records_csv(path: Path, text: str) -> _Records:
    """CSV with quoting, but one row per line: a quoted field may not run past its line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: file is empty (no header row)") from None
    if reader.line_num > 1:
        raise DataError(_runaway(path, 1, reader.line_num))
    records, last, n_lines = [], reader.line_num, 0
    try:
        for values in reader:
            start, last = last + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            if last > start:
                raise DataError(_runaway(path, start, last))
            if len(values) != len(header):
                raise DataError(f"{path}:{start}: expected {len(header)} fields, found {len(values)}")
            records.append((start, dict(zip(header, values))))
            n_lines += last - start + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{last + 1}: malformed row ({exc})") from None
    return header, records, n_lines


def _runaway(path: Path, start: int, end: int) -> str:
    return (f"{path}:{start}: a quoted field runs over lines {start}-{end} (unbalanced '\"'?); "
            "every row must be on one line")


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; errors name file and line.

    Lines end at ``\n`` only: U+2028 and the like may stand unescaped in JSON strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records = []
    for n, line in enumerate(_decode(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: expected a JSON object per line")
        records.append((n, obj))
    return records


def read_objects(path: str | Path) -> list[tuple[int, dict]]:
    """:func:`read_jsonl`, or the rows of a ``.parquet`` file (numbered from 1)."""
    if Path(path).suffix.lower() == ".parquet":
        from llm_aug.data.parquet import read_parquet  # lazy: pyarrow

        return read_parquet(path)[1]
    return read_jsonl(path)


def _records_jsonl(path: Path) -> _Records:
    records = read_jsonl(path)
    columns: dict[str, None] = {}
    for _, obj in records:
        columns.update(dict.fromkeys(obj))
    return list(columns), records, len(records)


def _read_records(path: Path, fmt: str | None) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and records of any format, checked to be one row per data line."""
    fmt = fmt or {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl",
                  ".parquet": "parquet"}.get(path.suffix.lower(), "tsv")
    if fmt == "parquet":
        from llm_aug.data.parquet import read_parquet  # lazy: pyarrow

        header, records = read_parquet(path)
        n_lines = len(records)
    elif fmt == "jsonl":
        header, records, n_lines = _records_jsonl(path)
    elif fmt == "tsv":
        header, records, n_lines = _records_tsv(path, _decode(path))
    elif fmt == "csv":
        header, records, n_lines = _records_csv(path, _decode(path))
    else:
        raise DataError(f"{path}: unknown format {fmt!r}; use tsv, csv, jsonl or parquet")
    # Each reader stops at the line where a row would span several (one row per data line).
    logger.debug("%s: %d data lines, %d rows", path, n_lines, len(records))
    return header, records


def read_records(path: str | Path, fmt: str | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """Column names and (line, record) of a TSV, CSV, JSONL or Parquet file, as stored
    (or of an ``hf:DIR_OR_ID[:SPLIT]`` dataset, :mod:`llm_aug.data.hf`)."""
    if str(path).startswith("hf:"):
        from llm_aug.data.hf import read_hf  # lazy: datasets

        header, records, _ = read_hf(str(path))
        return header, records
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _read_records(path, fmt)
