"""Load and validate labelled text files: SOS-1K TSV, generic TSV/CSV, JSONL.

Every error names the file and (where it applies) the line, and is a ``DataError``
so the CLI shows it as one line with exit code 2.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from llm_aug.core.files import file_sha256
from llm_aug.data.normalize import NormalizeConfig, normalize_text
from llm_aug.data.schemes import LabelScheme
from llm_aug.core.errors import DataError

SOS_TEXT_COL, SOS_LABEL_COL = "comment", "myLabel"


@dataclass(frozen=True)
class Row:
    """One post: a stable id, its (normalised) text and label (None when unlabelled)."""

    id: str
    text: str
    label: int | None = None


@dataclass
class Dataset:
    """Rows loaded from one file, in file order."""

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


def _records_delimited(path: Path, text: str, delimiter: str) -> tuple[list[str], list[tuple[int, dict]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: file is empty (no header row)") from None
    records = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(values)}"
                )
            records.append((reader.line_num, dict(zip(header, values))))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed row ({exc})") from None
    return header, records


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records = []
    for n, line in enumerate(_decode(path).splitlines(), start=1):
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


def _records_jsonl(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    records = read_jsonl(path)
    columns: dict[str, None] = {}
    for _, obj in records:
        columns.update(dict.fromkeys(obj))
    return list(columns), records


def _read_records(path: Path, fmt: str | None) -> tuple[list[str], list[tuple[int, dict]]]:
    fmt = fmt or {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(path.suffix.lower(), "tsv")
    if fmt == "jsonl":
        return _records_jsonl(path)
    if fmt not in {"tsv", "csv"}:
        raise DataError(f"{path}: unknown format {fmt!r}; use tsv, csv or jsonl")
    return _records_delimited(path, _decode(path), "\t" if fmt == "tsv" else ",")


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
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found: {', '.join(header) or 'none'}"
        )
    has_labels = bool(label_col) and label_col in header
    rows, seen, counts = [], {}, {}
    for line, rec in records:
        text = normalize_text(str(rec.get(text_col) or ""), normalize)
        if not text:
            raise DataError(f"{path}:{line}: empty text in column {text_col!r}")
        label = None
        raw_label = rec.get(label_col) if has_labels else None
        if raw_label is not None and str(raw_label).strip() != "":
            label = _parse_label(path, line, raw_label, scheme)
        elif require_labels:
            raise DataError(f"{path}:{line}: missing label in column {label_col!r}")
        if id_col:
            rid = str(rec.get(id_col) or "").strip()
            if not rid:
                raise DataError(f"{path}:{line}: empty id in column {id_col!r}")
            if rid in seen:
                raise DataError(f"{path}:{line}: duplicate id {rid!r} (first at line {seen[rid]})")
        else:
            base = content_id(text)
            counts[base] = counts.get(base, 0) + 1
            rid = base if counts[base] == 1 else f"{base}-{counts[base]}"
        seen[rid] = line
        rows.append(Row(rid, text, label))
    if not rows:
        raise DataError(f"{path}: no data rows")
    return Dataset(rows, path=path, scheme=scheme, meta={"sha256": file_sha256(path)})


def write_tsv(rows: list[Row], path: str | Path) -> None:
    """Write rows in SOS-1K format (``comment``, ``myLabel``)."""
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([SOS_TEXT_COL, SOS_LABEL_COL])
        for r in rows:
            writer.writerow([r.text, "" if r.label is None else r.label])
