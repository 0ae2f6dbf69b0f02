"""Load and validate labelled text files: SOS-1K TSV, generic TSV/CSV, JSONL, Parquet.

Every error names the file and (where it applies) the line, and is a ``DataError``
so the CLI shows it as one line with exit code 2.

Every format holds one row per line. TSV fields are literal text split on tabs (posts
contain quotes): a quote never joins lines, and only a field wholly in CSV quotes
(``"..."`` with inner ``""``, as pandas writes it) is unquoted. CSV keeps its quoting,
but a quoted field that runs past its line (a stray ``"``) is an error naming the line
where it opened, never rows silently folded into one. Parquet (:mod:`llm_aug.data.parquet`)
is read by row; its errors name the row number where the others name the line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from llm_aug.core.errors import DataError, did_you_mean
from llm_aug.core.files import atomic_write, file_sha256
from llm_aug.data.normalize import NormalizeConfig, normalize_text
from llm_aug.data.schemes import LabelScheme

SOS_TEXT_COL, SOS_LABEL_COL = "comment", "myLabel"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One post: a stable id, its (normalised) text and label (None when unlabelled)."""

    id: str
    text: str
    label: int | None = None


@dataclass
class Dataset:
    """Rows loaded from one file, in file order; ``texts``, ``labels``, ``ids`` per row.

    ``meta``: the file's ``sha256``, and ``data_lines`` and ``rows`` (equal: one row per line).
    """

    rows: list[Row]
    path: Path | None = None
    scheme: LabelScheme | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.rows]

    @property
    def labels(self) -> list[int | None]:
        return [r.label for r in self.rows]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rows]


def content_id(text: str) -> str:
    """Stable id of a post derived from its text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


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
    """Column names and (line, record) of a TSV, CSV, JSONL or Parquet file, as stored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _read_records(path, fmt)


def _parse_label(path: Path, line: int, raw: object, scheme: LabelScheme | None) -> int:
    try:
        label = int(str(raw).strip())
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line}: label {raw!r} is not an integer") from None
    if scheme is not None and label not in scheme:
        raise DataError(
            f"{path}:{line}: label {label} is outside scheme {scheme.name!r} "
            f"(allowed {scheme.labels[0]}..{scheme.labels[-1]})"
        )
    return label


@dataclass
class _Columns:
    """Which record fields hold what, for one file."""

    text: str
    label: str | None
    id: str | None
    require_labels: bool
    normalize: NormalizeConfig | None


def _rows(path: Path, records: list[tuple[int, dict]], cols: _Columns,
          scheme: LabelScheme | None) -> list[Row]:
    """Rows from records: normalised text, checked label, unique id."""
    rows, seen, counts = [], {}, {}
    for line, rec in records:
        text = normalize_text(str(rec.get(cols.text) or ""), cols.normalize)
        if not text:
            raise DataError(f"{path}:{line}: empty text in column {cols.text!r}")
        label = None
        raw_label = rec.get(cols.label) if cols.label else None
        if raw_label is not None and str(raw_label).strip() != "":
            label = _parse_label(path, line, raw_label, scheme)
        elif cols.require_labels:
            raise DataError(f"{path}:{line}: missing label in column {cols.label!r}")
        if cols.id:
            rid = str(rec.get(cols.id) or "").strip()
            if not rid:
                raise DataError(f"{path}:{line}: empty id in column {cols.id!r}")
            if rid in seen:
                raise DataError(f"{path}:{line}: duplicate id {rid!r} (first at line {seen[rid]})")
        else:
            base = content_id(text)
            counts[base] = counts.get(base, 0) + 1
            rid = base if counts[base] == 1 else f"{base}-{counts[base]}"
        seen[rid] = line
        rows.append(Row(rid, text, label))
    return rows


#: How to point the loaders at other column names (the CLI options and the API keywords).
COLUMN_HINT = "name the columns with --text-col/--label-col/--id-col (text_col=/label_col=/id_col= from Python)"


def load_dataset(
    path: str | Path,
    scheme: LabelScheme | None = None,
    *,
    text_col: str = SOS_TEXT_COL,
    label_col: str | None = SOS_LABEL_COL,
    id_col: str | None = None,
    fmt: str | None = None,
    require_labels: bool = True,
    normalize: NormalizeConfig | None = None,
) -> Dataset:
    """Load a labelled (or, with ``require_labels=False``, unlabelled) file.

    Ids come from ``id_col`` when given, else from the text's hash; a repeated text
    gets ``-2``, ``-3``... so ids stay unique and stable for the same file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    header, records = _read_records(path, fmt)
    needed = [text_col] + ([label_col] if label_col and require_labels else []) + ([id_col] if id_col else [])
    missing = [c for c in needed if c not in header]
    if missing:
        close = did_you_mean(missing[0], header) if len(missing) == 1 else ""
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}{close}; "
                        f"found: {', '.join(header) or 'none'}; {COLUMN_HINT}")
    has_labels = bool(label_col) and label_col in header
    cols = _Columns(text_col, label_col if has_labels else None, id_col, require_labels, normalize)
    rows = _rows(path, records, cols, scheme)
    if not rows:
        raise DataError(f"{path}: no data rows")
    meta = {"sha256": file_sha256(path), "data_lines": len(records), "rows": len(rows)}
    return Dataset(rows, path=path, scheme=scheme, meta=meta)


def write_tsv(rows: list[Row], path: str | Path) -> None:
    """Write rows in SOS-1K format (``comment``, ``myLabel``), one line per row.

    A text holding ``"`` is CSV-quoted, as pandas writes it; the loader undoes that. A
    text holding a tab or line break could not be read back as one row: ``DataError``.
    """
    bad = next((r for r in rows if any(c in r.text for c in "\t\r\n")), None)
    if bad is not None:
        raise DataError(f"{path}: text of row {bad.id!r} holds a tab or line break; "
                        "normalise it before writing TSV")
    def write(fh: TextIO) -> None:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([SOS_TEXT_COL, SOS_LABEL_COL])
        for r in rows:
            writer.writerow([r.text, "" if r.label is None else r.label])
    atomic_write(Path(path), write)
