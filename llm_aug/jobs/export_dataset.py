"""``export-dataset``: an ``augment`` run as a Hugging Face ``datasets`` folder.

Writes ``DIR/data/train-00000-of-00001.parquet`` (one row per corpus row: text, label,
the synthetic flag, the method and provenance) and ``DIR/README.md``, a dataset card
whose YAML names the data files, so ``datasets.load_dataset(DIR)`` reads it offline.
The corpus is read from ``corpus.jsonl`` and the run's facts (prompts, model, filters,
rejections) from ``manifest.json``; nothing is looked up online. ``push_to_hub`` then
uploads the folder (:mod:`llm_aug.jobs.hub`: private unless asked, refused offline).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_binary, atomic_write_text
from llm_aug.core.manifest import read_manifest
from llm_aug.data.io import read_jsonl
from llm_aug.jobs.dataset_card import render_card
from llm_aug.jobs.hub import PushResult, check_push, push_dataset
from llm_aug.jobs.results import JobResult

log = logging.getLogger(__name__)

#: The one split an augment run makes (its corpus is training data), and its file.
SPLIT = "train"
DATA_FILE = f"data/{SPLIT}-00000-of-00001.parquet"
#: The method of an original (not generated) row.
ORIGINAL = "original"


class ExportResult(JobResult):
    """What :func:`export_dataset` wrote."""

    out: Path = Field(description="the dataset folder")
    files: list[str] = Field(description="files written, relative to out")
    rows: dict[str, int] = Field(description="rows per split")
    n_original: int
    n_synthetic: int
    license: str
    hub: PushResult | None = Field(None, description="where --push-to-hub put it (None: not pushed)")


def _columns() -> Any:
    import pyarrow as pa  # lazy: pyarrow

    return pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int64()),
                      ("synthetic", pa.bool_()), ("method", pa.string()),
                      ("source_ids", pa.list_(pa.string())), ("prompt", pa.string()),
                      ("prompt_sha256", pa.string()), ("model", pa.string()), ("seed", pa.int64())])


def dataset_row(obj: dict) -> dict[str, Any]:
    """One corpus.jsonl object as a flat dataset row (original rows: method ``original``)."""
    prompt = obj.get("prompt") or {}
    synthetic = bool(obj.get("synthetic"))
    return {"id": str(obj["id"]), "text": obj["text"], "label": int(obj["label"]), "synthetic": synthetic,
            "method": obj.get("method") or (ORIGINAL if not synthetic else "unknown"),
            "source_ids": list(obj.get("source_ids") or []), "prompt": prompt.get("name"),
            "prompt_sha256": prompt.get("sha"), "model": obj.get("model"), "seed": obj.get("seed")}


def _read_run(run: Path) -> tuple[list[dict], dict]:
    corpus, manifest = run / "corpus.jsonl", run / "manifest.json"
    for path in (corpus, manifest):
        if not path.is_file():
            raise UserError(f"{run}: no {path.name}; point export-dataset at an `llm-aug augment` output folder")
    meta = read_manifest(run, "augment")
    try:
        rows = [dataset_row(obj) for _, obj in read_jsonl(corpus)]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{corpus}: not an augment corpus row ({exc!r})") from None
    if not rows:
        raise UserError(f"{corpus}: no rows")
    return rows, meta


def _check_out(run: Path, out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose a new --out")
    if out.resolve() == run.resolve():
        raise UserError(f"{out}: the dataset folder must not be the run folder")


def export_dataset(run: str | Path, out: str | Path, *, license: str = "other", push_to_hub: str | None = None,
                   public: bool = False, hub_api: Any | None = None) -> ExportResult:
    """Write the dataset folder ``out`` from the augment run folder ``run``; with ``push_to_hub``
    (``OWNER/NAME``) upload it there, private unless ``public`` (``hub_api``: an ``HfApi``-like object)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    run, out = Path(run), Path(out)
    if push_to_hub is not None:
        check_push(push_to_hub)  # before any work: offline mode, the repo id
    elif public:
        raise UserError("--public only applies with --push-to-hub REPO")
    rows, manifest = _read_run(run)
    _check_out(run, out)
    table = pa.Table.from_pylist(rows, schema=_columns())
    (out / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_binary(out / DATA_FILE, lambda fh: pq.write_table(table, fh))
    n_rejected = sum(1 for _ in read_jsonl(run / "rejected.jsonl")) if (run / "rejected.jsonl").is_file() else 0
    card = render_card(rows, manifest, split=SPLIT, data_file=DATA_FILE, license=license, n_rejected=n_rejected)
    atomic_write_text(out / "README.md", card)
    n_synth = sum(r["synthetic"] for r in rows)
    log.info("dataset: %d rows (%d synthetic) -> %s", len(rows), n_synth, out)
    hub = (push_dataset(out, push_to_hub, public=public, rows=len(rows), api=hub_api)
           if push_to_hub is not None else None)
    return ExportResult(out=out, files=[DATA_FILE, "README.md"], rows={SPLIT: len(rows)},
                        n_original=len(rows) - n_synth, n_synthetic=n_synth, license=license, hub=hub)

