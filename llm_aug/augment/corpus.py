"""Write the augmented corpus: a drop-in training TSV plus per-row provenance.

Files written to ``out_dir`` (each atomically: temp file in the same folder, fsync,
rename, so a crash never leaves a half-written corpus behind):

* ``corpus.tsv``      SOS-1K format (``comment``, ``myLabel``): the original rows in
                       file order, then the accepted synthetic rows; the paper's
                       ``train.py`` reads it as it reads ``train.tsv``.
* ``corpus.jsonl``    one JSON object per ``corpus.tsv`` row, same order: original rows
                       as ``{"id", "text", "label", "synthetic": false}``, synthetic
                       rows as the full :class:`SynthRow` (method, source/exemplar ids,
                       prompt, model, seed, filter scores).
* ``rejected.jsonl``  every rejected synthetic row with ``rejected_by``/``reject_reason``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

from llm_aug.augment.rows import SynthRow
from llm_aug.core.files import atomic_write
from llm_aug.data.io import SOS_LABEL_COL, SOS_TEXT_COL, Dataset

log = logging.getLogger(__name__)


class CorpusFiles(NamedTuple):
    """Paths written by :func:`write_corpus`."""

    tsv: Path
    jsonl: Path
    rejected: Path


def _jsonl(objs: Sequence[dict]) -> Callable[[TextIO], None]:
    def write(fh: TextIO) -> None:
        fh.writelines(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n" for obj in objs)
    return write


def _tsv(rows: Sequence[tuple[str, int | None]]) -> Callable[[TextIO], None]:
    def write(fh: TextIO) -> None:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([SOS_TEXT_COL, SOS_LABEL_COL])
        writer.writerows([text, "" if label is None else label] for text, label in rows)
    return write


def write_corpus(out_dir: str | Path, original: Dataset, accepted: Sequence[SynthRow],
                 rejected: Sequence[SynthRow]) -> CorpusFiles:
    """Write ``corpus.tsv``, ``corpus.jsonl`` and ``rejected.jsonl`` to ``out_dir``."""
    out = Path(out_dir)
    bad = [r.id for r in accepted if not r.text.strip() or r.rejected_by]
    if bad:
        raise ValueError(f"accepted rows that are empty or marked rejected: {bad[:5]}")
    unlabelled = [r.id for r in original.rows if r.label is None]
    if unlabelled:
        raise ValueError(f"original rows without a label cannot train: {unlabelled[:5]}")
    files = CorpusFiles(out / "corpus.tsv", out / "corpus.jsonl", out / "rejected.jsonl")
    pairs = [(r.text, r.label) for r in original.rows] + [(r.text, r.label) for r in accepted]
    provenance = [{"id": r.id, "text": r.text, "label": r.label, "synthetic": False} for r in original.rows]
    provenance += [r.model_dump(mode="json") for r in accepted]
    atomic_write(files.tsv, _tsv(pairs))
    atomic_write(files.jsonl, _jsonl(provenance))
    atomic_write(files.rejected, _jsonl([r.model_dump(mode="json") for r in rejected]))
    log.info("corpus: %d original + %d synthetic rows (%d rejected) -> %s",
             len(original), len(accepted), len(rejected), out)
    return files
