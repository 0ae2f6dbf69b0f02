"""Write the augmented corpus: a drop-in training TSV plus per-row provenance.

Files written to ``out_dir`` (each atomically: temp file in the same folder, fsync,
rename, so a crash never leaves a half-written corpus behind):

* ``corpus.tsv``      SOS-1K format (``comment``, ``myLabel``) plus a ``synthetic``
                       column (0 for an original row, 1 for a generated one): the
                       original rows in file order, then the accepted synthetic rows.
                       Readers that pick columns by name (the paper's ``train.py``,
                       pandas, this package's loaders) read it as they read ``train.tsv``.
* ``corpus.parquet``  in place of ``corpus.tsv`` when the format is ``parquet``: the same
                       three columns (``comment`` text, ``myLabel`` int64, ``synthetic``
                       bool), which ``data convert`` turns into the TSV byte for byte.
* ``corpus.jsonl``    one JSON object per corpus row, same order: original rows
                       as ``{"id", "text", "label", "synthetic": false}``, synthetic
                       rows as the full :class:`SynthRow` (method, source/exemplar ids,
                       prompt, model, seed, filter scores).
* ``rejected.jsonl``  every rejected synthetic row with ``rejected_by``/``reject_reason``.

:class:`CorpusWriter` streams synthetic rows to part files as a run decides them, so a
run of 100,000s of candidates never holds them all; :func:`write_corpus` is the same
for rows already in memory.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple, TextIO

from llm_aug.augment.rows import SynthRow
from llm_aug.core.files import atomic_write_all
from llm_aug.data.io import SOS_LABEL_COL, SOS_TEXT_COL, Dataset

log = logging.getLogger(__name__)


class CorpusFiles(NamedTuple):
    """Paths written by :func:`write_corpus`: the corpus table (``corpus.tsv`` or ``corpus.parquet``)
    and its provenance and rejections."""

    table: Path
    jsonl: Path
    rejected: Path

    @property
    def tsv(self) -> Path:
        """The corpus table (the name from when it was always ``corpus.tsv``)."""
        return self.table


#: Formats of the corpus table, by the file each writes.
CORPUS_FORMATS = {"tsv": "corpus.tsv", "parquet": "corpus.parquet"}


_PARTS = (".synthetic.jsonl.part", ".rejected.jsonl.part")


class CorpusWriter:
    """Streams accepted and rejected synthetic rows to disk as they are decided.

    Rows go to two part files in ``out_dir`` (one JSON line each, nothing held in memory);
    :meth:`finish` writes ``corpus.tsv``, ``corpus.jsonl`` and ``rejected.jsonl`` from them
    (each atomically) and removes them. A run killed before that leaves only the part
    files, which the next run truncates: the final files are never half-written.
    """

    def __init__(self, out_dir: str | Path, fmt: str = "tsv") -> None:
        if fmt not in CORPUS_FORMATS:
            raise ValueError(f"unknown corpus format {fmt!r}; use {' or '.join(CORPUS_FORMATS)}")
        self.out, self.fmt = Path(out_dir), fmt
        self.out.mkdir(parents=True, exist_ok=True)
        self._paths = [self.out / name for name in _PARTS]
        self._files = [path.open("w", encoding="utf-8", newline="") for path in self._paths]
        self.n_accepted = self.n_rejected = 0

    def accept(self, rows: Iterable[SynthRow]) -> None:
        """Append rows to the corpus (after the original rows, in call order)."""
        for r in rows:
            if not r.text.strip() or r.rejected_by:
                raise ValueError(f"accepted row that is empty or marked rejected: {r.id}")
            self._files[0].write(_line(r.model_dump(mode="json")))
            self.n_accepted += 1

    def reject(self, rows: Iterable[SynthRow]) -> None:
        """Append rows to ``rejected.jsonl``."""
        for r in rows:
            self._files[1].write(_line(r.model_dump(mode="json")))
            self.n_rejected += 1

    def flush(self) -> None:
        """Push what was written so far to the part files (a round's end: its rows are on disk)."""
        for fh in self._files:
            fh.flush()

    def finish(self, original: Dataset) -> CorpusFiles:
        """Write the three files (original rows first, then the accepted rows) and clean up."""
        unlabelled = [r.id for r in original.rows if r.label is None]
        if unlabelled:
            self.discard()
            raise ValueError(f"original rows without a label cannot train: {unlabelled[:5]}")
        for fh in self._files:
            fh.close()
        files = CorpusFiles(self.out / CORPUS_FORMATS[self.fmt], self.out / "corpus.jsonl",
                            self.out / "rejected.jsonl")
        synthetic = self._paths[0]
        table = ((files.table, lambda fh: _write_tsv(fh, original, synthetic)) if self.fmt == "tsv" else
                 (files.table, lambda fh: _write_parquet(fh, original, synthetic), "wb"))
        try:  # the three appear together or not at all (a full disk leaves none of them)
            atomic_write_all([table, (files.jsonl, lambda fh: _write_provenance(fh, original, synthetic)),
                              (files.rejected, lambda fh: _copy_lines(fh, self._paths[1]))])
        finally:
            self.discard()
        for other in set(CORPUS_FORMATS.values()) - {files.table.name}:  # a previous run's, now stale
            if (self.out / other).is_file():
                log.info("removing %s: this run wrote %s", self.out / other, files.table.name)
                (self.out / other).unlink()
        log.info("corpus: %d original + %d synthetic rows (%d rejected) -> %s",
                 len(original), self.n_accepted, self.n_rejected, self.out)
        return files

    def discard(self) -> None:
        """Close and remove the part files."""
        for fh, path in zip(self._files, self._paths):
            fh.close()
            path.unlink(missing_ok=True)


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _synthetic(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


#: ``corpus.tsv``'s third column: 1 marks a synthetic row, 0 an original one.
SYNTHETIC_COL = "synthetic"


def _write_tsv(fh: TextIO, original: Dataset, synthetic: Path) -> None:
    writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
    writer.writerow([SOS_TEXT_COL, SOS_LABEL_COL, SYNTHETIC_COL])
    writer.writerows([r.text, r.label, 0] for r in original.rows)
    writer.writerows([r["text"], r["label"], 1] for r in _synthetic(synthetic))


def _write_parquet(fh: BinaryIO, original: Dataset, synthetic: Path) -> None:
    """corpus.tsv's columns as a typed table (labels int64, the synthetic flag a boolean)."""
    import pyarrow as pa  # lazy: pyarrow
    import pyarrow.parquet as pq

    texts, labels, flags = [], [], []
    for text, label, flag in [*((r.text, r.label, False) for r in original.rows),
                              *((r["text"], r["label"], True) for r in _synthetic(synthetic))]:
        texts.append(text)
        labels.append(label)
        flags.append(flag)
    table = pa.table({SOS_TEXT_COL: pa.array(texts, pa.string()), SOS_LABEL_COL: pa.array(labels, pa.int64()),
                      SYNTHETIC_COL: pa.array(flags, pa.bool_())})
    pq.write_table(table, fh)


def _write_provenance(fh: TextIO, original: Dataset, synthetic: Path) -> None:
    fh.writelines(_line({"id": r.id, "text": r.text, "label": r.label, "synthetic": False})
                  for r in original.rows)
    _copy_lines(fh, synthetic)


def _copy_lines(fh: TextIO, path: Path) -> None:
    with path.open(encoding="utf-8") as src:
        shutil.copyfileobj(src, fh)


def write_corpus(out_dir: str | Path, original: Dataset, accepted: Sequence[SynthRow],
                 rejected: Sequence[SynthRow], fmt: str = "tsv") -> CorpusFiles:
    """Write ``corpus.tsv`` (or, ``fmt="parquet"``, ``corpus.parquet``), ``corpus.jsonl`` and
    ``rejected.jsonl`` to ``out_dir`` at once."""
    bad = [r.id for r in accepted if not r.text.strip() or r.rejected_by]
    if bad:
        raise ValueError(f"accepted rows that are empty or marked rejected: {bad[:5]}")
    writer = CorpusWriter(out_dir, fmt)
    writer.accept(accepted)
    writer.reject(rejected)
    return writer.finish(original)
