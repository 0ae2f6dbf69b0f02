"""``llm-aug review export RUN``: the run's corpus rebuilt from what the reviewers kept.

The corpus ``augment`` wrote is saved once as ``corpus.generated.jsonl``; every export
rebuilds from it, so an export after more decisions (or with ``--reviewer``) is a fresh
rebuild, never a filter of a filtered corpus. Written to the run folder:

* ``corpus.jsonl`` and the corpus table (``corpus.tsv``; ``corpus.parquet`` for a
  ``--format parquet`` run or where one exists): the original rows, then the accepted
  and relabelled synthetic rows (a relabelled row carries its new label and keeps its
  provenance). Rows stay :class:`~llm_aug.augment.rows.SynthRow` dumps, so every reader
  of an augment corpus reads a reviewed one.
* ``review-rejected.jsonl``: the rows review rejected (``rejected_by: "review"``, the
  reasons in ``reject_reason``); ``review-relabelled.jsonl``: id, old and new level, who.
* ``review-report.md``: per level generated / kept / relabelled in and out / rejected /
  undecided / conflicts / final / target shortfall, the reject reasons, agreement.
* ``manifest.json`` gains a ``review`` section (reviewers, counts, kappa, time).

Undecided rows and rows reviewers disagree on leave the corpus; both are counted and
warned about, never silently kept.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from pydantic import Field

from llm_aug.augment.corpus import SYNTHETIC_COL
from llm_aug.augment.rows import SynthRow
from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_all
from llm_aug.core.manifest import MANIFEST_FILE, scrub
from llm_aug.data.io import SOS_LABEL_COL, SOS_TEXT_COL
from llm_aug.jobs.results import JobResult
from llm_aug.jobs.review.balance import KINDS, Verdict, balance, reject_reasons, verdicts
from llm_aug.jobs.review.items import (
    GENERATED_FILE,
    GENERATED_STAMP,
    ReviewRun,
    augment_stamp,
    corpus_path,
    load_review_run,
    read_corpus,
    read_manifest,
    saved_stamp,
)
from llm_aug.jobs.review.report import review_markdown
from llm_aug.jobs.review.status import agreement
from llm_aug.jobs.review.store import REVIEW_FILE, ReviewLog, now_utc

log = logging.getLogger(__name__)

REJECTED_FILE = "review-rejected.jsonl"
RELABELLED_FILE = "review-relabelled.jsonl"
REPORT_FILE = "review-report.md"


class ReviewExportResult(JobResult):
    """What :func:`export_review` kept, dropped and wrote."""

    run: Path = Field(description="the augment run folder")
    kept: int = Field(description="synthetic rows in the rebuilt corpus (accepted + relabelled)")
    relabelled: int = Field(description="kept rows that moved to another level")
    rejected: int = Field(description="rows review rejected")
    undecided: int = Field(description="rows no reviewer decided (left out)")
    conflicts: int = Field(description="rows reviewers decided differently (left out)")
    per_level: dict[int, dict] = Field(description="level -> original, generated, accepted, relabelled_out, "
                                       "relabelled_in, rejected, undecided, conflict, final, target, shortfall")
    files: list[str] = Field(description="files written, relative to run")
    reviewers: list[str] = Field(default_factory=list, description="whose decisions were used")
    generated: int = Field(0, description="synthetic rows augment generated (and the review saw)")


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _save_generated(run: Path, manifest: dict) -> None:
    """Keep the corpus augment wrote before the first rebuild replaces corpus.jsonl, with the
    augment run it came from (so a later augment into the folder is told apart)."""
    stamp = (GENERATED_STAMP, lambda fh: fh.write(json.dumps({"augment_manifest": augment_stamp(manifest)}) + "\n"))
    if corpus_path(run) == run / GENERATED_FILE:
        if saved_stamp(run) is None:  # saved by an export that did not record it
            atomic_write_all([(run / stamp[0], stamp[1])])
        return
    data = (run / "corpus.jsonl").read_text(encoding="utf-8")
    atomic_write_all([(run / GENERATED_FILE, lambda fh: fh.write(data)), (run / stamp[0], stamp[1])])
    log.info("saved the generated corpus as %s", run / GENERATED_FILE)


def _kept_rows(originals: list[dict], rows: list[dict], found: dict[str, Verdict]) -> list[dict]:
    out = [{"id": r["id"], "text": r["text"], "label": r["label"], "synthetic": False} for r in originals]
    for r in rows:
        v = found[str(r["id"])]
        if v.kind in ("accept", "relabel"):
            out.append(SynthRow.model_validate({**r, "label": v.level}).model_dump(mode="json"))
    return out


def _rejected_rows(rows: list[dict], found: dict[str, Verdict]) -> list[dict]:
    out = []
    for r in rows:
        v = found[str(r["id"])]
        if v.kind == "reject":
            why = f"{'; '.join(v.reasons)} ({', '.join(v.reviewers)})"
            out.append(SynthRow.model_validate({**r, "rejected_by": "review", "reject_reason": why})
                       .model_dump(mode="json"))
    return out


def _write_tsv(fh: TextIO, rows: list[dict]) -> None:
    writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
    writer.writerow([SOS_TEXT_COL, SOS_LABEL_COL, SYNTHETIC_COL])
    writer.writerows([r["text"], r["label"], int(bool(r["synthetic"]))] for r in rows)


def _write_parquet(fh: BinaryIO, rows: list[dict]) -> None:
    """corpus.tsv's columns typed as ``augment --format parquet`` writes them."""
    import pyarrow as pa  # lazy: pyarrow
    import pyarrow.parquet as pq

    pq.write_table(pa.table({SOS_TEXT_COL: pa.array([r["text"] for r in rows], pa.string()),
                             SOS_LABEL_COL: pa.array([int(r["label"]) for r in rows], pa.int64()),
                             SYNTHETIC_COL: pa.array([bool(r["synthetic"]) for r in rows], pa.bool_())}), fh)


def _tables(run: Path, manifest: dict) -> list[str]:
    """The corpus tables to rebuild: the run's format, and any other one found in the folder."""
    config = manifest.get("config") or {}
    fmt = config.get("corpus_format") or config.get("format") or "tsv"
    names = {"corpus.parquet" if fmt == "parquet" else "corpus.tsv"}
    names |= {n for n in ("corpus.tsv", "corpus.parquet") if (run / n).is_file()}
    return sorted(names, key=lambda n: n != "corpus.tsv")


def _targets(run: Path, manifest: dict) -> dict[int, int]:
    targets = (manifest.get("result") or {}).get("targets")
    if targets:
        return {int(k): int(v) for k, v in targets.items()}
    plan = run / "plan.json"
    if plan.is_file():
        levels = json.loads(plan.read_text(encoding="utf-8")).get("levels") or []
        return {int(lv["label"]): int(lv["have"]) + int(lv["need"]) for lv in levels}
    return {}


def _write_outputs(run: Path, manifest: dict, section: dict[str, Any], kept: list[dict], rejected: list[dict],
                   relabelled: list[dict]) -> list[str]:
    """Every output of the export; the manifest (its ``review`` section, holding ``files``) goes
    with the text files in one group, so it never describes a corpus that was not written."""
    tables = _tables(run, manifest)
    text_files = [("corpus.jsonl", lambda fh: fh.writelines(map(_line, kept))),
                  (REJECTED_FILE, lambda fh: fh.writelines(map(_line, rejected))),
                  (RELABELLED_FILE, lambda fh: fh.writelines(map(_line, relabelled)))]
    if "corpus.tsv" in tables:
        text_files.insert(0, ("corpus.tsv", lambda fh: _write_tsv(fh, kept)))
    files = [*tables, *(name for name, _ in text_files if name != "corpus.tsv"), REPORT_FILE]
    section = {**section, "files": files}
    updated = json.dumps({**manifest, "review": scrub(section)}, indent=2, ensure_ascii=False, default=str)
    text_files += [(REPORT_FILE, lambda fh: fh.write(review_markdown(run, section))),
                   (MANIFEST_FILE, lambda fh: fh.write(updated))]
    group: list = [(run / name, write) for name, write in text_files]
    if "corpus.parquet" in tables:  # renamed with the rest: a failed export leaves no new table either
        group.insert(0, (run / "corpus.parquet", lambda fh: _write_parquet(fh, kept), "wb"))
    atomic_write_all(group)
    return files


def _reviewer(run: Path, decisions: list, reviewer: str | None) -> str | None:
    if not decisions:  # exporting now would drop every synthetic post: surely not what was meant
        raise UserError(f"{run}: no review decisions yet ({REVIEW_FILE} is missing or empty); "
                        "review the run first (llm-aug review RUN)")
    if reviewer is None:
        return None
    names = sorted({d.reviewer for d in decisions})
    if reviewer.strip() not in names:
        raise UserError(f"no decisions by {reviewer!r} in {run / REVIEW_FILE}; "
                        f"reviewers: {', '.join(names) or 'none yet'}")
    return reviewer.strip()


def _summary(run: Path, manifest: dict, review_run: ReviewRun, decisions: list, originals: list[dict],
             rows: list[dict], found: dict[str, Verdict], reviewer: str | None) -> dict[str, Any]:
    """The manifest's review section (less the files): who, how many, per level, agreement."""
    labels = [lv.level for lv in review_run.levels]
    n = {k: sum(v.kind == k for v in found.values()) for k in KINDS}
    pairs = agreement(review_run, decisions) if reviewer is None else []
    return {"time": now_utc(), "reviewer": reviewer,
            "reviewers": [reviewer] if reviewer else sorted({d.reviewer for d in decisions}),
            "decisions": len(decisions), "decisions_sha256": _digest(decisions), "generated": len(rows), "kept": n["accept"] + n["relabel"],
            "accepted": n["accept"], "relabelled": n["relabel"], "rejected": n["reject"],
            "undecided": n["undecided"], "conflicts": n["conflict"], "reject_reasons": reject_reasons(found),
            "kappa": pairs[0].kappa if len(pairs) == 1 else None,
            "agreement": [p.model_dump(mode="json", exclude={"disagreements"}) for p in pairs],
            "per_level": balance(originals, rows, found, _targets(run, manifest), labels)}


def _digest(decisions: list) -> str:
    """sha256 of the decisions used (their JSON lines), naming exactly what this export saw."""
    data = "".join(json.dumps(d.model_dump(mode="json"), ensure_ascii=False) + "\n" for d in decisions)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _relabelled(rows: list[dict], found: dict[str, Verdict]) -> list[dict]:
    return [{"id": r["id"], "from": r["label"], "to": v.level, "reviewers": list(v.reviewers)}
            for r in rows if (v := found[str(r["id"])]).kind == "relabel"]


def export_review(run: str | Path, *, reviewer: str | None = None) -> ReviewExportResult:
    """Rebuild the corpus of ``run`` from its review (``reviewer``: use only that reviewer's decisions)."""
    run = Path(run)
    manifest = read_manifest(run)
    decisions = ReviewLog(run / REVIEW_FILE).read()
    reviewer = _reviewer(run, decisions, reviewer)
    review_run = load_review_run(run, n_neighbours=0)
    ids = {it.id for it in review_run.items}
    if not any(d.row_id in ids for d in decisions):  # e.g. the log of an earlier augment run in the folder
        raise UserError(f"{run}: none of the {len(decisions)} decisions in {REVIEW_FILE} is on a synthetic post "
                        "of this corpus (augment ran again?); review it first (llm-aug review RUN)")
    _save_generated(run, manifest)
    originals, rows = read_corpus(run)
    found = verdicts(rows, decisions, [lv.level for lv in review_run.levels], reviewer)
    s = _summary(run, manifest, review_run, decisions, originals, rows, found, reviewer)
    _warn(s, reviewer)
    files = _write_outputs(run, manifest, s, _kept_rows(originals, rows, found), _rejected_rows(rows, found),
                           _relabelled(rows, found))
    log.info("review export: kept %d of %d synthetic rows (%d relabelled), rejected %d -> %s",
             s["kept"], len(rows), s["relabelled"], s["rejected"], run)
    return ReviewExportResult(run=run, kept=s["kept"], relabelled=s["relabelled"], rejected=s["rejected"],
                              undecided=s["undecided"], conflicts=s["conflicts"], per_level=s["per_level"],
                              files=[*files, MANIFEST_FILE], reviewers=s["reviewers"], generated=len(rows))


def _warn(s: dict[str, Any], reviewer: str | None) -> None:
    if s["undecided"]:
        who = f"by {reviewer}" if reviewer else "by any reviewer"
        log.warning("%d synthetic rows not decided %s: left out of the corpus", s["undecided"], who)
    if s["conflicts"]:
        log.warning("%d synthetic rows decided differently by the reviewers: left out of the corpus "
                    "(resolve them, or export one reviewer's decisions with --reviewer)", s["conflicts"])
