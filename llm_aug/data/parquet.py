"""Parquet beside TSV/CSV/JSONL: read a table as records, write records as a table.

pyarrow is imported inside the functions: ``llm-aug --help`` and the TSV paths never
load it. A Parquet row's "line" in error messages is its row number (1 = first row),
so ``file:N:`` reads the same as for the line-based formats.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from llm_aug.core.errors import DataError
from llm_aug.core.files import atomic_write, atomic_write_binary

logger = logging.getLogger(__name__)

#: Formats :func:`write_records` can write, by file extension.
WRITE_FORMATS = {".parquet": "parquet", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


def read_parquet(path: str | Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Column names and (row number, record) for every row of a Parquet file."""
    import pyarrow.parquet as pq  # lazy: pyarrow costs a second to import

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError... for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    records = list(enumerate(table.to_pylist(), start=1))
    logger.debug("%s: %d Parquet rows", path, len(records))
    return list(table.column_names), records


def write_parquet(path: str | Path, records: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Write records as one Parquet table (atomically); ``columns`` fixes the column order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    names = list(columns) if columns is not None else list(dict.fromkeys(k for r in records for k in r))
    try:
        table = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in records])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: the rows do not fit one Parquet schema ({exc})") from None
    table = table.select(names) if names else table
    atomic_write_binary(path, lambda fh: pq.write_table(table, fh))


def _tsv_value(path: Path, number: int, value: Any) -> str:
    """One TSV cell: booleans as 1/0 (corpus.tsv's ``synthetic``), lists and objects as JSON."""
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = "" if value is None else str(value)
    if any(c in text for c in "\t\r\n"):
        raise DataError(f"{path}: row {number} holds a tab or line break; write JSONL or Parquet instead")
    return text


def write_records(path: str | Path, header: Sequence[str], records: Sequence[tuple[int, dict]]) -> str:
    """Write records to ``path`` in the format its extension names; returns that format."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot write this extension; use .tsv, .jsonl or .parquet")
    if fmt == "parquet":
        write_parquet(path, [r for _, r in records], header)
        return fmt

    def write(fh: TextIO) -> None:
        if fmt == "jsonl":
            fh.writelines(json.dumps({k: r.get(k) for k in header}, ensure_ascii=False) + "\n"
                          for _, r in records)
            return
        # The corpus writer's dialect: a field holding '"' is CSV-quoted, the loader undoes it.
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_tsv_value(path, n, r.get(k)) for k in header] for n, r in records)
    atomic_write(path, write)
    return fmt
