"""What a reviewer sees: each synthetic row of an ``augment`` run with its context.

Per row: its text, the level it was made for, the method, the posts it was made from
(its exemplars) and its nearest training posts (neighbours, by character n-gram TF-IDF
cosine), so a near copy or a post that reads like another level stands out. The
neighbours of every row are computed once at load with sparse products, in chunks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from llm_aug.core.errors import UserError
from llm_aug.core.manifest import MANIFEST_FILE
from llm_aug.core.manifest import read_manifest as read_run_manifest
from llm_aug.data.io import read_jsonl
from llm_aug.data.normalize import normalize_for_match
from llm_aug.data.schemes import LabelScheme, scheme_for_task
from llm_aug.jobs.review.store import Decision

log = logging.getLogger(__name__)

#: The corpus as ``augment`` wrote it, saved by the first review export (which rewrites corpus.jsonl).
GENERATED_FILE = "corpus.generated.jsonl"
#: Which augment run the saved corpus came from (:func:`augment_stamp` of its manifest).
GENERATED_STAMP = "corpus.generated.json"
_CHUNK_CELLS = 4_000_000  # dense similarity cells per chunk (16 MB of float32)


class Exemplar(BaseModel):
    """A training post a synthetic row was made from (a source or a prompt exemplar)."""

    id: str
    text: str
    label: int | None


class Neighbour(BaseModel):
    """One of the training posts most similar to a synthetic row."""

    id: str
    text: str
    label: int | None
    similarity: float


class ReviewItem(BaseModel):
    """One synthetic row to review."""

    id: str
    text: str
    level: int = Field(description="the level the row was generated for")
    method: str
    source_ids: list[str]
    exemplars: list[Exemplar]
    scores: dict[str, float]
    neighbours: list[Neighbour]


class LevelInfo(BaseModel):
    """A level of the run's label scheme, for the reviewer's reference."""

    level: int
    name: str
    definition: str
    name_zh: str = ""
    definition_zh: str = ""


class ReviewRun(BaseModel):
    """An augment run loaded for review."""

    run: Path
    task: str
    levels: list[LevelInfo]
    items: list[ReviewItem]
    _index: dict[str, ReviewItem] = PrivateAttr(default_factory=dict)

    def item(self, row_id: str) -> ReviewItem:
        """The item of ``row_id``; KeyError when the run has no such synthetic row."""
        if len(self._index) != len(self.items):
            self._index = {it.id: it for it in self.items}
        return self._index[row_id]

    def check(self, decision: Decision) -> Decision:
        """``decision`` if it fits this run (known row, a level of the scheme that accept/relabel
        may assign); else a ``UserError`` a reviewer can act on."""
        try:
            item = self.item(decision.row_id)
        except KeyError:
            raise UserError(f"unknown row {decision.row_id!r}: not a synthetic row of {self.run}") from None
        labels = [lv.level for lv in self.levels]
        if decision.level is not None and decision.level not in labels:
            raise UserError(f"level {decision.level} is not a level of the {self.task} scheme "
                            f"({', '.join(map(str, labels))})")
        if decision.decision == "accept" and decision.level != item.level:
            raise UserError(f"accept keeps the row's level {item.level} (got {decision.level}); "
                            "use relabel to assign another level")
        if decision.decision == "relabel" and decision.level == item.level:
            raise UserError(f"relabel needs a level other than the row's own ({item.level}); "
                            "use accept to keep it")
        return decision


def augment_stamp(manifest: dict[str, Any]) -> str:
    """sha256 naming the augment run a manifest describes: its own fields, which a review export
    (rewriting only the ``review`` section) keeps and a new ``augment`` into the folder replaces."""
    own = {k: manifest.get(k) for k in ("command", "created", "argv", "seed", "data_files", "result")}
    return hashlib.sha256(json.dumps(own, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def saved_stamp(run: Path) -> str | None:
    """The :func:`augment_stamp` recorded with the saved corpus (None: none recorded)."""
    try:
        return str(json.loads((run / GENERATED_STAMP).read_text(encoding="utf-8"))["augment_manifest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def corpus_path(run: Path) -> Path:
    """The generated corpus of a run: ``corpus.generated.jsonl`` once a review export saved it.

    After a later ``augment`` into the same folder (its manifest is another run's than the
    saved corpus's, or corpus.jsonl holds a row the saved copy lacks) corpus.jsonl is the
    generated corpus (the next export saves it anew).
    """
    saved, current = run / GENERATED_FILE, run / "corpus.jsonl"
    if not saved.is_file():
        return current
    stamp = saved_stamp(run)
    if stamp is None or stamp == augment_stamp(read_manifest(run)):
        ids = {str(obj.get("id")) for _, obj in read_jsonl(saved)}
        if all(str(obj.get("id")) in ids for _, obj in read_jsonl(current)):  # (augment killed before its manifest)
            return saved
    log.warning("%s: corpus.jsonl is from another augment run than %s (augment ran again?): reviewing corpus.jsonl",
                run, GENERATED_FILE)
    return current


def read_manifest(run: Path) -> dict[str, Any]:
    """``RUN/manifest.json``; a UserError when the folder is not an augment run."""
    if not run.is_dir() or not (run / MANIFEST_FILE).is_file() or not (run / "corpus.jsonl").is_file():
        raise UserError(f"{run}: not an `llm-aug augment` output folder (needs corpus.jsonl and manifest.json)")
    return read_run_manifest(run, "augment")


def read_corpus(run: Path) -> tuple[list[dict], list[dict]]:
    """(original rows, synthetic rows) of the run's generated corpus, in file order."""
    rows = [obj for _, obj in read_jsonl(corpus_path(run))]
    return [r for r in rows if not r.get("synthetic")], [r for r in rows if r.get("synthetic")]


def levels_of(scheme: LabelScheme) -> list[LevelInfo]:
    """The scheme's levels as :class:`LevelInfo`."""
    return [LevelInfo(level=lv.id, name=lv.name_en, definition=lv.definition_en, name_zh=lv.name_zh,
                      definition_zh=lv.definition_zh) for lv in scheme.levels]


def nearest(queries: list[str], pool: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each ``len(queries) x min(k, len(pool))``: the ``k`` posts of
    ``pool`` nearest each query by char 1-3-gram TF-IDF cosine, most similar first."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # lazy: sklearn

    k = min(k, len(pool))
    if not queries or k == 0:
        return np.zeros((len(queries), 0), int), np.zeros((len(queries), 0))
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float32)
    pool_m = vec.fit_transform([normalize_for_match(t) or t for t in pool]).T.tocsc()
    query_m = vec.transform([normalize_for_match(t) or t for t in queries]).tocsr()
    step = max(1, _CHUNK_CELLS // len(pool))
    idx = np.empty((len(queries), k), dtype=np.int64)
    sim = np.empty((len(queries), k), dtype=np.float64)
    for start in range(0, len(queries), step):
        dense = (query_m[start:start + step] @ pool_m).toarray()
        top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(dense, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        idx[start:start + step] = top
        sim[start:start + step] = np.take_along_axis(dense, top, axis=1)
    return idx, sim


def _item(row: dict, originals: dict[str, dict], neighbours: list[Neighbour]) -> ReviewItem:
    wanted = list(dict.fromkeys([*(row.get("source_ids") or []), *(row.get("exemplar_ids") or [])]))
    exemplars = [Exemplar(id=i, text=originals[i]["text"], label=originals[i].get("label"))
                 for i in wanted if i in originals]
    return ReviewItem(id=str(row["id"]), text=row["text"], level=int(row["label"]),
                      method=row.get("method") or "unknown", source_ids=list(row.get("source_ids") or []),
                      exemplars=exemplars, scores=dict(row.get("scores") or {}), neighbours=neighbours)


def load_review_run(run: str | Path, *, n_neighbours: int = 3) -> ReviewRun:
    """The synthetic rows of the augment run ``run`` as review items (UserError when there are none)."""
    run = Path(run)
    manifest = read_manifest(run)
    task = (manifest.get("config") or {}).get("task", "fine")
    originals, synthetic = read_corpus(run)
    if not synthetic:
        raise UserError(f"{run}: the corpus has no synthetic rows; there is nothing to review")
    by_id = {str(r["id"]): r for r in originals}
    idx, sim = nearest([r["text"] for r in synthetic], [r["text"] for r in originals], n_neighbours)
    items = []
    for row, ii, ss in zip(synthetic, idx, sim):
        near = [Neighbour(id=str(originals[i]["id"]), text=originals[i]["text"], label=originals[i].get("label"),
                          similarity=round(float(s), 4)) for i, s in zip(ii, ss)]
        items.append(_item(row, by_id, near))
    log.info("review: %d synthetic rows of %s (%d training posts as neighbours)", len(items), run, len(originals))
    return ReviewRun(run=run, task=task, levels=levels_of(scheme_for_task(task)), items=items)
