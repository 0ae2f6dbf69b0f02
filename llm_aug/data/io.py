"""Load and validate labelled text files: SOS-1K TSV, generic TSV/CSV, JSONL, Parquet, ``hf:`` datasets.

Every error names the file and (where it applies) the line, and is a ``DataError``
so the CLI shows it as one line with exit code 2.

Every format holds one row per line (:mod:`llm_aug.data.records` reads them; its
readers stay importable from here). ``hf:DIR_OR_ID[:SPLIT]`` loads a Hugging Face
dataset folder or hub id with ``datasets`` (:mod:`llm_aug.data.hf`); its rows are
numbered from 1 where a file's errors give the line.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from llm_aug.core.errors import DataError, did_you_mean
from llm_aug.core.files import atomic_write, file_sha256
from llm_aug.data.normalize import NormalizeConfig, normalize_text
from llm_aug.data.records import read_jsonl, read_objects, read_records
from llm_aug.data.schemes import LabelScheme

__all__ = ["COLUMN_HINT", "SOS_LABEL_COL", "SOS_TEXT_COL", "Dataset", "Row", "content_id", "load_dataset",
           "read_jsonl", "read_objects", "read_records", "write_tsv"]

SOS_TEXT_COL, SOS_LABEL_COL = "comment", "myLabel"


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
    """Load a labelled (or, with ``require_labels=False``, unlabelled) file or ``hf:`` dataset.

    Ids come from ``id_col`` when given, else from the text's hash; a repeated text
    gets ``-2``, ``-3``... so ids stay unique and stable for the same file. An ``hf:``
    dataset may name its columns ``text``/``label``/``id`` instead (:mod:`llm_aug.data.hf`).
    """
    from llm_aug.data.hf import is_hf_spec

    if is_hf_spec(path):
        from llm_aug.data.hf import read_hf, resolve_columns

        header, records, digest = read_hf(str(path))
        text_col, label_col, id_col = resolve_columns(header, text_col, label_col, id_col,
                                                       (SOS_TEXT_COL, SOS_LABEL_COL))
        where = Path(str(path))
    else:
        where = Path(path)
        header, records = read_records(where, fmt)
        digest = file_sha256(where)
    _check_columns(where, header, [text_col] + ([label_col] if label_col and require_labels else [])
                   + ([id_col] if id_col else []))
    has_labels = bool(label_col) and label_col in header
    cols = _Columns(text_col, label_col if has_labels else None, id_col, require_labels, normalize)
    rows = _rows(where, records, cols, scheme)
    if not rows:
        raise DataError(f"{where}: no data rows")
    meta = {"sha256": digest, "data_lines": len(records), "rows": len(rows)}
    return Dataset(rows, path=where, scheme=scheme, meta=meta)


def _check_columns(path: Path, header: list[str], needed: list[str]) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        close = did_you_mean(missing[0], header) if len(missing) == 1 else ""
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}{close}; "
                        f"found: {', '.join(header) or 'none'}; {COLUMN_HINT}")


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
