"""``hf:DIR_OR_ID[:SPLIT]``: a Hugging Face dataset (a local folder or a hub id) as records.

Loaded with ``datasets.load_dataset`` (the optional ``hf`` extra, imported only here).
A folder written by ``llm-aug export-dataset``, or any folder of Parquet/CSV/JSON files,
loads offline; a hub id needs the network or the ``datasets`` cache, and failing that
is one ``UserError`` line, never a traceback. A dataset with several splits must be
given one (``hf:DIR:train``): picking for the user could put test rows into training;
so must a lone split other than ``train`` (a folder holding only ``test.parquet``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.core.progress import is_quiet

log = logging.getLogger(__name__)

PREFIX = "hf:"
INSTALL_HINT = "pip install 'llm-aug[hf]'"
#: The column names Hugging Face datasets use, tried when the SOS-1K names are absent.
HF_TEXT, HF_LABEL, HF_ID = "text", "label", "id"
_SPLIT = re.compile(r"[A-Za-z0-9_.\-]+")


def is_hf_spec(path: object) -> bool:
    """True for ``hf:...`` (what ``--train``/``--input``/... accept besides a file path)."""
    return str(path).startswith(PREFIX)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """(folder or hub id, split or None) of ``hf:SOURCE[:SPLIT]``.

    A source that exists as a local path is taken whole, so a folder whose name holds a
    colon still loads.
    """
    body = spec[len(PREFIX):]
    head, sep, tail = body.rpartition(":")
    if sep and head and _SPLIT.fullmatch(tail) and not Path(body).expanduser().exists():
        return head, tail
    if not body:
        raise UserError(f"{spec!r}: give a dataset folder or hub id after hf: (hf:DIR_OR_ID[:SPLIT])")
    return body, None


def _load(spec: str, source: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError(f"{spec}: reading hf: datasets needs the datasets package: {INSTALL_HINT}") from None
    local = Path(source).expanduser()
    if local.is_file():
        raise UserError(f"{spec}: {local} is a file; give it without hf: (hf: is for a dataset folder or hub id)")
    target = str(local) if local.is_dir() else source
    if is_quiet():  # --quiet: no "Generating train split" bars either
        datasets.disable_progress_bars()
    log.info("loading %s with datasets (%s)", spec, "local folder" if local.is_dir() else "hub id")
    try:
        return datasets.load_dataset(target)
    except Exception as exc:  # datasets raises many kinds (offline, not found, no data files...)
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        hint = ("" if local.is_dir() else
                "; a hub id needs the network (or the datasets cache); for a local folder check the path")
        raise UserError(f"{spec}: cannot load with datasets ({type(exc).__name__}: {reason}){hint}") from None


def _pick_split(spec: str, loaded: Any, split: str | None) -> Any:
    names = list(loaded.keys())
    if split is not None:
        if split not in loaded:
            raise UserError(f"{spec}: no split {split!r}; it has {', '.join(names)}")
        return loaded[split]
    if len(names) != 1:
        raise UserError(f"{spec}: the dataset has splits {', '.join(names)}; name one, e.g. {spec}:{names[0]}")
    if names[0] != "train":  # datasets names splits by file name: a lone test file is a "test" split
        raise UserError(f"{spec}: its only split is {names[0]!r} (datasets reads split names from the file "
                        f"names); name it ({spec}:{names[0]}) to use it")
    return loaded[names[0]]


def read_hf(spec: str) -> tuple[list[str], list[tuple[int, dict]], str]:
    """Column names, (row number, record) per row, and a fingerprint of the split's rows."""
    source, split = parse_spec(spec)
    table = _pick_split(spec, _load(spec, source), split)
    records = list(enumerate(table.to_list(), start=1))
    digest = hashlib.sha256(repr([r for _, r in records]).encode("utf-8")).hexdigest()
    log.info("%s: %d rows, columns %s", spec, len(records), ", ".join(table.column_names))
    return list(table.column_names), records, digest


def resolve_columns(header: list[str], text_col: str, label_col: str | None, id_col: str | None,
                    defaults: tuple[str, str]) -> tuple[str, str | None, str | None]:
    """The columns to read: the asked ones; in place of the ``defaults`` (the SOS-1K names) and
    of ids from the text, ``text``/``label``/``id`` where the dataset has those."""
    if text_col == defaults[0] and text_col not in header and HF_TEXT in header:
        text_col = HF_TEXT
    if label_col == defaults[1] and label_col not in header and HF_LABEL in header:
        label_col = HF_LABEL
    if id_col is None and HF_ID in header:
        id_col = HF_ID
    return text_col, label_col, id_col
