"""Prediction files (JSONL) and their alignment with gold data.

One JSON object per line::

    {"id": "3f2a9c01b7de", "text": "...", "pred": 4, "proba": [...], "raw": "...",
     "error": null, "confidence": 0.8}

``id`` and ``pred`` are required; ``pred`` is an integer label or ``null`` (the
answer could not be parsed -- it is scored as wrong). ``proba`` (floats over the
scheme's labels), ``raw``, ``error`` and ``confidence`` are optional.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from llm_aug.core.errors import DataError, UserError
from llm_aug.data.io import Dataset, read_objects

logger = logging.getLogger(__name__)

_SHOW = 5  # ids shown in an error message


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate(where: str, obj: object) -> dict:
    """Check one parsed line; return it with ``id`` as a string."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(obj).__name__}")
    for key in ("id", "pred"):
        if key not in obj:
            hint = " (use null for an unparseable answer)" if key == "pred" else ""
            raise DataError(f"{where}: missing key {key!r}{hint}")
    rid = obj["id"]
    if not (isinstance(rid, str) or _is_int(rid)) or str(rid).strip() == "":
        raise DataError(f"{where}: 'id' must be a non-empty string or integer, got {rid!r}")
    if obj["pred"] is not None and not _is_int(obj["pred"]):
        raise DataError(f"{where}: 'pred' must be an integer label or null, got {obj['pred']!r}")
    proba = obj.get("proba")
    if proba is not None and not (isinstance(proba, list) and all(_is_number(x) for x in proba)):
        raise DataError(f"{where}: 'proba' must be a list of numbers")
    conf = obj.get("confidence")
    if conf is not None and not _is_number(conf):
        raise DataError(f"{where}: 'confidence' must be a number or null, got {conf!r}")
    return {**obj, "id": str(rid)}


def read_predictions(path: str | Path) -> list[dict]:
    """Read and validate a predictions JSONL (or Parquet) file; errors name ``file:line``."""
    path = Path(path)
    records: list[dict] = []
    first_line: dict[str, int] = {}
    for n, obj in read_objects(path):
        rec = _validate(f"{path}:{n}", obj)
        if rec["id"] in first_line:
            raise DataError(
                f"{path}:{n}: duplicate id {rec['id']!r} (first at line {first_line[rec['id']]})"
            )
        first_line[rec["id"]] = n
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no predictions")
    return records


def _examples(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:_SHOW])
    return shown + (", ..." if len(ids) > _SHOW else "")


def _duplicates(ids: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    return dups


def align(
    preds: Sequence[dict], gold: Dataset, *, source: str | Path | None = None
) -> tuple[list[int], list[int | None], list[str]]:
    """Match predictions to gold rows by id, in gold order.

    Returns ``(gold_labels, pred_labels, ids)``. Raises ``UserError`` when ids are
    duplicated, when any gold item lacks a prediction or any prediction has no gold
    item (with counts and a few example ids), or when a gold item has no label.
    ``source`` names the predictions in messages.
    """
    where = f"{source}" if source is not None else "predictions"
    gold_name = str(gold.path) if gold.path is not None else "gold data"
    pred_ids = [str(p["id"]) for p in preds]
    for name, ids in ((where, pred_ids), (gold_name, gold.ids)):
        dups = _duplicates(ids)
        if dups:
            raise UserError(f"{name}: {len(dups)} duplicate id(s): {_examples(dups)}")
    by_id = {str(p["id"]): p for p in preds}
    missing = [i for i in gold.ids if i not in by_id]
    gold_set = set(gold.ids)
    extra = [i for i in pred_ids if i not in gold_set]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(gold)} gold items have no prediction ({_examples(missing)})")
    if extra:
        problems.append(f"{len(extra)} prediction(s) have ids not in {gold_name} ({_examples(extra)})")
    if problems:
        raise UserError(f"{where}: ids do not match the gold data: " + "; ".join(problems))
    unlabelled = [r.id for r in gold.rows if r.label is None]
    if unlabelled:
        raise UserError(
            f"{gold_name}: {len(unlabelled)} item(s) have no gold label ({_examples(unlabelled)})"
        )
    changed = sum(1 for r in gold.rows if "text" in by_id[r.id] and by_id[r.id]["text"] != r.text)
    if changed:
        logger.warning("%s: %d prediction(s) carry a text that differs from the gold text", where, changed)
    pred_labels = [by_id[i]["pred"] for i in gold.ids]
    return [int(r.label) for r in gold.rows], pred_labels, list(gold.ids)
