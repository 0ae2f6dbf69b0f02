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

from llm_aug.core.errors import DataError, UserError
from llm_aug.core.files import atomic_write, atomic_write_binary

logger = logging.getLogger(__name__)

#: Formats :func:`write_records` can write, by file extension.
WRITE_FORMATS = {".parquet": "parquet", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
#: Schema metadata key listing the columns :func:`write_objects` stored as JSON text.
JSON_COLUMNS_KEY = b"llm_aug.json_columns"


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
    records = list(enumerate(_decoded(table), start=1))
    logger.debug("%s: %d Parquet rows", path, len(records))
    return list(table.column_names), records


def _decoded(table: Any) -> list[dict]:
    """The table's rows, with the columns :func:`write_objects` stored as JSON text parsed back."""
    meta = (table.schema.metadata or {}).get(JSON_COLUMNS_KEY)
    rows = table.to_pylist()
    if meta:
        names = json.loads(meta)
        for row in rows:
            for name in names:
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
    return rows


def _shape(value: Any) -> str | None:
    """A value's Parquet type: a scalar's type, ``list[T]`` for a list of one scalar type,
    ``list[]`` for an empty list; None for what no one column type holds exactly."""
    if isinstance(value, dict):
        return None
    if isinstance(value, list):
        inner = {type(v) for v in value}
        if not inner:
            return "list[]"
        kind = inner.pop()
        return None if inner or kind in (list, dict, type(None)) else f"list[{kind.__name__}]"
    return type(value).__name__


def _json_columns(records: Sequence[dict], names: Sequence[str]) -> list[str]:
    """Columns that one Parquet type would not hold exactly (objects, mixed types, mixed lists)."""
    out = []
    for name in names:
        shapes = {_shape(r[name]) for r in records if r.get(name) is not None}
        if any(s and s.startswith("list[") for s in shapes) and len(shapes) > 1:
            shapes.discard("list[]")  # an empty list fits any list column
        if None in shapes or len(shapes) > 1:
            out.append(name)
    return out


def write_objects(path: str | Path, objects: Sequence[dict]) -> None:
    """Write JSON objects (predictions rows) as Parquet that :func:`read_parquet` returns unchanged.

    A column one Parquet type holds exactly (text, integers, floats, booleans, lists of
    one of those) is stored as such; any other (objects, a reply that is text in one row
    and a list in another) as JSON text, named in the schema metadata so the reader
    parses it back.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    names = list(dict.fromkeys(k for r in objects for k in r))
    encoded = _json_columns(objects, names)
    rows = [{k: (json.dumps(r.get(k), ensure_ascii=False) if k in encoded and r.get(k) is not None else r.get(k))
             for k in names} for r in objects]
    try:
        table = pa.Table.from_pylist(rows) if rows else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: the rows do not fit one Parquet schema ({exc})") from None
    table = table.select(names) if names else table
    if encoded:
        table = table.replace_schema_metadata({JSON_COLUMNS_KEY: json.dumps(encoded)})
    atomic_write_binary(path, lambda fh: pq.write_table(table, fh))


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


#: What a predictions file can be written as (``--output-format``).
PREDICTION_FORMATS = ("jsonl", "parquet")


def is_parquet(path: str | Path) -> bool:
    """True when ``path`` names a Parquet file (by its extension, as every reader decides)."""
    return Path(path).suffix.lower() == ".parquet"


def output_format(path: str | Path, fmt: str | None = None) -> str:
    """``jsonl`` or ``parquet`` for a predictions file: ``fmt``, which must agree with the
    extension (readers go by it), else the extension's."""
    by_name = "parquet" if is_parquet(path) else "jsonl"
    if fmt is None:
        return by_name
    if fmt not in PREDICTION_FORMATS:
        raise UserError(f"--output-format {fmt!r}: use jsonl or parquet")
    if fmt != by_name:
        want = "ending .parquet" if fmt == "parquet" else "not ending .parquet"
        raise UserError(f"{path}: --output-format {fmt} needs an output name {want} (readers go by the extension)")
    return fmt
