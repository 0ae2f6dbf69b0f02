"""``review export``: the corpus of a real augment run rebuilt from two reviewers' decisions, honestly counted."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest
import yaml

from augment_run import make_run
from clirun import assert_ok, invoke
from llm_aug.augment.rows import SynthRow
from llm_aug.core.errors import UserError
from llm_aug.data.io import load_dataset
from llm_aug.data.parquet import read_parquet
from llm_aug.data.schemes import scheme_for_task
from llm_aug.jobs import export_dataset
from llm_aug.jobs.review.export import export_review
from llm_aug.jobs.review.items import GENERATED_FILE, load_review_run
from llm_aug.jobs.review.status import agreement
from llm_aug.jobs.review.store import REVIEW_FILE, Decision, ReviewLog


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review-export"))


@pytest.fixture
def run_dir(base_run, tmp_path):
    shutil.copytree(base_run.parent, tmp_path / "copy")
    return tmp_path / "copy" / "run"


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _d(item, kind, who, level=None):
    level = item.level if kind == "accept" else level if kind == "relabel" else None
    reason = "implausible" if kind == "reject" else None
    return Decision(row_id=item.id, decision=kind, level=level, reason=reason, reviewer=who)


def _review(run_dir):
    """ann decides every row but two; bob decides half of them, disagreeing on some; carol only skips."""
    run = load_review_run(run_dir, n_neighbours=0)
    log = ReviewLog(run_dir / REVIEW_FILE)
    expect = {}
    for i, it in enumerate(run.items):
        if i in (0, 1):
            log.append(_d(it, "skip", "ann"))
            expect[it.id] = "undecided"
            continue
        kind = ("reject", "relabel", "accept", "accept")[i % 4]
        new = (it.level + 3) % 11
        log.append(run.check(_d(it, kind, "ann", new)))
        expect[it.id] = kind
        if i % 2:
            continue
        other = "accept" if i % 10 == 2 else kind  # bob disagrees on every fifth row he decides
        log.append(run.check(_d(it, other, "bob", new)))
        if other != kind:
            expect[it.id] = "conflict"
    log.append(_d(run.items[5], "skip", "carol"))
    return run, expect


def test_export_rebuilds_corpus_from_agreed_decisions(run_dir, caplog):
    generated = _jsonl(run_dir / "corpus.jsonl")
    generated_tsv = (run_dir / "corpus.tsv").read_bytes()
    run, expect = _review(run_dir)
    with caplog.at_level(logging.WARNING):
        result = export_review(run_dir)
    count = {k: sum(v == k for v in expect.values()) for k in ("accept", "relabel", "reject", "undecided", "conflict")}
    assert all(count.values())
    assert (result.kept, result.relabelled, result.rejected, result.undecided, result.conflicts) == \
        (count["accept"] + count["relabel"], count["relabel"], count["reject"], count["undecided"], count["conflict"])
    assert f"{count['undecided']} synthetic rows not decided" in caplog.text
    assert f"{count['conflict']} synthetic rows decided differently" in caplog.text
    # the generated corpus is kept as it was; the new one: originals, then the kept rows in order
    assert (run_dir / GENERATED_FILE).read_text(encoding="utf-8").splitlines() == \
        [json.dumps(r, ensure_ascii=False) for r in generated]
    corpus = _jsonl(run_dir / "corpus.jsonl")
    originals = [r for r in generated if not r["synthetic"]]
    assert corpus[:len(originals)] == originals
    by_id = {r["id"]: r for r in generated}
    items = {it.id: it for it in run.items}
    kept = corpus[len(originals):]
    assert [r["id"] for r in kept] == [i for i in items if expect[i] in ("accept", "relabel")]
    for r in kept:
        SynthRow.model_validate(r)  # readers of an augment corpus read a reviewed one
        want = by_id[r["id"]] | ({"label": (items[r["id"]].level + 3) % 11} if expect[r["id"]] == "relabel" else {})
        assert r == want  # provenance untouched, only the label of a relabelled row changed
    # corpus.tsv is what `llm-aug train` reads: same rows, same labels
    tsv = load_dataset(run_dir / "corpus.tsv", scheme_for_task("fine"))
    assert [(row.text, row.label) for row in tsv.rows] == [(r["text"], r["label"]) for r in corpus]
    assert (run_dir / "corpus.tsv").read_bytes() != generated_tsv
    # the balance table is the corpus: a relabelled row counted at its new level
    for lv, row in result.per_level.items():
        assert row["final"] == sum(r["label"] == lv for r in corpus)
        assert row["shortfall"] == max(0, row["target"] - row["final"]) and row["target"] == 12
    assert sum(row["relabelled_in"] for row in result.per_level.values()) == count["relabel"]
    rejected = _jsonl(run_dir / "review-rejected.jsonl")
    assert [r["id"] for r in rejected] == [i for i in items if expect[i] == "reject"]
    assert {r["rejected_by"] for r in rejected} == {"review"} and "implausible" in rejected[0]["reject_reason"]
    moved = _jsonl(run_dir / "review-relabelled.jsonl")
    assert [(m["id"], m["to"]) for m in moved] == \
        [(i, (items[i].level + 3) % 11) for i in items if expect[i] == "relabel"]


def test_manifest_and_report_record_the_review(run_dir):
    before = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    run, _ = _review(run_dir)
    result = export_review(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in manifest.items() if k != "review"} == before
    review = manifest["review"]
    pair = agreement(run, ReviewLog(run_dir / REVIEW_FILE).read())
    assert review["reviewers"] == ["ann", "bob", "carol"] and review["reviewer"] is None
    assert review["kappa"] == pair[0].kappa and 0 < review["kappa"] < 1  # carol only skipped: one pair
    assert [(p["reviewers"], p["kappa"]) for p in review["agreement"]] == [(list(p.reviewers), p.kappa) for p in pair]
    assert [p["reviewers"] for p in review["agreement"]] == [["ann", "bob"]]  # carol decided nothing
    assert (review["kept"], review["rejected"], review["undecided"], review["conflicts"]) == \
        (result.kept, result.rejected, result.undecided, result.conflicts)
    assert review["per_level"] == {str(k): v for k, v in result.per_level.items()}
    assert review["files"] == ["corpus.tsv", "corpus.jsonl", "review-rejected.jsonl", "review-relabelled.jsonl",
                               "review-report.md"] == result.files[:-1]
    log_bytes = (run_dir / REVIEW_FILE).read_bytes()  # every line was written by ReviewLog: the same JSON
    assert review["decisions_sha256"] == hashlib.sha256(log_bytes).hexdigest()
    report = (run_dir / "review-report.md").read_text(encoding="utf-8")
    assert f"undecided {result.undecided}, conflicts {result.conflicts}" in report
    assert f"Cohen's kappa {pair[0].kappa:.3f}" in report
    total = sum(r["final"] for r in result.per_level.values())
    assert f"| **all** | 66 | {result.kept + result.rejected + result.undecided + result.conflicts} |" in report
    assert f"| {total} | 132 |" in report


def test_one_reviewer_export_and_rebuilds_after_more_decisions(run_dir):
    run, expect = _review(run_dir)
    ann = export_review(run_dir, reviewer=" ann ")
    assert ann.conflicts == 0 and ann.reviewers == ["ann"]
    assert ann.undecided == 2 and ann.rejected == sum(1 for i, it in enumerate(run.items) if i > 1 and i % 4 == 0)
    first = {n: (run_dir / n).read_bytes() for n in ("corpus.tsv", "corpus.jsonl", "review-rejected.jsonl")}
    export_review(run_dir, reviewer="ann")
    assert {n: (run_dir / n).read_bytes() for n in first} == first  # same decisions, same files
    # ann changes her mind on a row she rejected, and decides the two she skipped
    rejected_id = next(i for i, k in expect.items() if k == "reject")
    log = ReviewLog(run_dir / REVIEW_FILE)
    log.append(_d(run.item(rejected_id), "accept", "ann"))
    for it in run.items[:2]:
        log.append(_d(it, "accept", "ann"))
    again = export_review(run_dir, reviewer="ann")
    assert (again.kept, again.rejected, again.undecided) == (ann.kept + 3, ann.rejected - 1, 0)
    ids = {r["id"] for r in _jsonl(run_dir / "corpus.jsonl")}
    assert rejected_id in ids and run.items[0].id in ids  # rebuilt from the generated corpus, not the last export


def test_accepting_everything_gives_back_the_generated_corpus(run_dir):
    generated = {n: (run_dir / n).read_bytes() for n in ("corpus.tsv", "corpus.jsonl")}
    run = load_review_run(run_dir, n_neighbours=0)
    log = ReviewLog(run_dir / REVIEW_FILE)
    for it in run.items:
        log.append(_d(it, "accept", "ann"))
    result = export_review(run_dir)
    assert (result.kept, result.rejected, result.undecided) == (len(run.items), 0, 0)
    assert {n: (run_dir / n).read_bytes() for n in generated} == generated
    # the review still opens on every generated row
    assert len(load_review_run(run_dir, n_neighbours=0).items) == len(run.items)


def test_reviewed_corpus_trains_and_exports_as_a_dataset(run_dir, tmp_path):
    _review(run_dir)
    export_review(run_dir)
    assert_ok(invoke("train", "--task", "fine", "--method", "majority", "--train", run_dir / "corpus.tsv",
                     "--val", run_dir.parent / "val.tsv", "--out", tmp_path / "model"))
    out = export_dataset(run_dir, tmp_path / "hf")
    text = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text[4:].split("\n---\n", 1)[0])["llm_aug"]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["review"]
    assert meta["review_status"] == "partly reviewed"  # undecided and conflicting rows were left out
    assert meta["review"]["reviewers"] == ["ann", "bob", "carol"]
    assert (meta["review"]["kept"], meta["review"]["rejected"]) == (manifest["kept"], manifest["rejected"])
    assert meta["review"]["agreement"][0]["kappa"] == manifest["agreement"][0]["kappa"]
    assert out.n_synthetic == manifest["kept"]
    assert "Review status: **partly reviewed** by ann, bob, carol" in text
    assert f"{manifest['kept']} kept ({manifest['relabelled']} relabelled" in text
    assert "no person has checked" not in text


def test_fully_reviewed_card_and_unreviewed_card(run_dir, tmp_path):
    export_dataset(run_dir, tmp_path / "before")
    assert "**not reviewed** (no person has checked" in (tmp_path / "before" / "README.md").read_text(encoding="utf-8")
    run = load_review_run(run_dir, n_neighbours=0)
    log = ReviewLog(run_dir / REVIEW_FILE)
    for i, it in enumerate(run.items):
        for who in ("ann", "bob"):
            log.append(_d(it, "reject" if i % 3 == 0 else "accept", who))
    export_review(run_dir)
    export_dataset(run_dir, tmp_path / "after")
    text = (tmp_path / "after" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text[4:].split("\n---\n", 1)[0])["llm_aug"]
    assert meta["review_status"] == "reviewed" and meta["review"]["kappa"] == 1.0
    assert "Cohen's kappa 1.000" in text


def test_parquet_corpus_kept_in_step(run_dir):
    # a corpus.parquet beside corpus.tsv (`llm-aug data convert`) is rebuilt too, never left stale
    assert_ok(invoke("data", "convert", run_dir / "corpus.tsv", run_dir / "corpus.parquet"))
    _review(run_dir)
    result = export_review(run_dir)
    assert "corpus.parquet" in result.files
    _, rows = read_parquet(run_dir / "corpus.parquet")
    corpus = _jsonl(run_dir / "corpus.jsonl")
    assert [(r["comment"], r["myLabel"], r["synthetic"]) for _, r in rows] == \
        [(c["text"], c["label"], c["synthetic"]) for c in corpus]


def test_refusals(run_dir, tmp_path):
    with pytest.raises(UserError, match="no review decisions yet"):
        export_review(run_dir)
    _review(run_dir)
    with pytest.raises(UserError, match="no decisions by 'zed'.*reviewers: ann, bob, carol"):
        export_review(run_dir, reviewer="zed")
    with pytest.raises(UserError, match="not an `llm-aug augment` output folder"):
        export_review(tmp_path)
    decided = ReviewLog(run_dir / REVIEW_FILE).read()
    (run_dir / REVIEW_FILE).write_text("".join(  # the log of an earlier augment run: no row of this one
        d.model_copy(update={"row_id": d.row_id + "-old"}).model_dump_json() + "\n" for d in decided), encoding="utf-8")
    with pytest.raises(UserError, match=rf"none of the {len(decided)} decisions .*augment ran again"):
        export_review(run_dir)
    (run_dir / "manifest.json").write_text("[]", encoding="utf-8")
    with pytest.raises(UserError, match="manifest.json: expected a JSON object"):
        export_review(run_dir)


def test_parquet_run_gets_a_parquet_corpus(run_dir):
    # what `augment --format parquet` leaves: corpus.parquet (no corpus.tsv), config corpus_format "parquet"
    assert_ok(invoke("data", "convert", run_dir / "corpus.tsv", run_dir / "corpus.parquet"))
    (run_dir / "corpus.tsv").unlink()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["corpus_format"] = "parquet"
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _review(run_dir)
    result = export_review(run_dir)
    assert result.files[0] == "corpus.parquet" and not (run_dir / "corpus.tsv").exists()
    _, rows = read_parquet(run_dir / "corpus.parquet")
    assert [(r["comment"], r["myLabel"], r["synthetic"]) for _, r in rows] == \
        [(c["text"], c["label"], c["synthetic"]) for c in _jsonl(run_dir / "corpus.jsonl")]


def test_a_new_augment_run_in_the_folder_replaces_the_saved_corpus(run_dir, caplog):
    _review(run_dir)
    export_review(run_dir)
    saved = (run_dir / GENERATED_FILE).read_bytes()
    # augment again into the same folder (another seed: other rewrites); the old saved corpus is still there
    shutil.rmtree(run_dir)
    make_run(run_dir.parent, extra=("--seed", "7"))
    (run_dir / GENERATED_FILE).write_bytes(saved)
    fresh = _jsonl(run_dir / "corpus.jsonl")
    run = load_review_run(run_dir, n_neighbours=0)
    assert "augment ran again?" in caplog.text
    assert [it.id for it in run.items] == [r["id"] for r in fresh if r["synthetic"]]
    ReviewLog(run_dir / REVIEW_FILE).append(_d(run.items[0], "accept", "ann"))
    assert export_review(run_dir).kept == 1
    assert (run_dir / GENERATED_FILE).read_text(encoding="utf-8").splitlines() == \
        [json.dumps(r, ensure_ascii=False) for r in fresh]  # saved anew


def test_sos1k_review_near_copies_rejected_shortfall_reported(sos1k_dir, tmp_path):
    """On SOS-1K's training posts: reject the rewrites that are near copies of a training post (as the
    neighbours show them), relabel a few; the balance table and corpus.tsv agree, shortfall against 100."""
    run_dir = make_run(tmp_path, balance="100", train=sos1k_dir / "fine" / "train.tsv",
                       protect=sos1k_dir / "fine" / "val.tsv")
    run = load_review_run(run_dir)
    assert len(run.items) > 300
    log = ReviewLog(run_dir / REVIEW_FILE)
    near = {it.id for it in run.items if it.neighbours[0].similarity > 0.9}
    assert 0 < len(near) < len(run.items)
    for i, it in enumerate(run.items):
        if it.id in near:
            log.append(Decision(row_id=it.id, decision="reject", reason="near copy", reviewer="ann"))
        else:
            new = it.level + 1 if it.level < 10 else 9
            log.append(run.check(_d(it, "relabel" if i % 10 == 0 else "accept", "ann", new)))
    result = export_review(run_dir)
    assert result.rejected == len(near) and result.undecided == result.conflicts == 0
    tsv = load_dataset(run_dir / "corpus.tsv", scheme_for_task("fine"))
    for lv, row in result.per_level.items():
        assert row["final"] == sum(r.label == lv for r in tsv.rows)
        assert row["target"] >= 100 or row["original"] >= 100
        assert row["shortfall"] == max(0, row["target"] - row["final"])
    assert sum(row["shortfall"] for row in result.per_level.values()) > 0  # rejecting near copies costs posts
    report = (run_dir / "review-report.md").read_text(encoding="utf-8")
    assert f"- near copy: {len(near)}" in report and "short of its target" in report


def test_augment_rerun_with_fewer_rows_replaces_the_saved_corpus(run_dir, caplog):
    """A later augment into the folder that keeps only some of the old rows (a smaller target: every id
    was in the saved corpus) is the corpus to review: the rows it dropped do not come back."""
    run = load_review_run(run_dir, n_neighbours=0)
    log = ReviewLog(run_dir / REVIEW_FILE)
    for it in run.items:
        log.append(_d(it, "accept", "ann"))
    export_review(run_dir)
    root = run_dir.parent
    assert_ok(invoke("augment", "--method", "eda", "--task", "fine", "--train", root / "train.tsv",
                     "--protect", root / "val.tsv", "--balance", "9", "--out", run_dir))
    fresh = _jsonl(run_dir / "corpus.jsonl")
    fresh_ids = [r["id"] for r in fresh if r["synthetic"]]
    assert 0 < len(fresh_ids) < len(run.items) and set(fresh_ids) <= {it.id for it in run.items}
    assert [it.id for it in load_review_run(run_dir, n_neighbours=0).items] == fresh_ids
    assert "augment ran again?" in caplog.text
    result = export_review(run_dir)
    assert (result.generated, result.kept, result.undecided) == (len(fresh_ids), len(fresh_ids), 0)
    assert [r["id"] for r in _jsonl(run_dir / "corpus.jsonl") if r["synthetic"]] == fresh_ids
    assert _jsonl(run_dir / GENERATED_FILE) == fresh
    # and the export's own corpus is not taken for a new augment run: more decisions rebuild from the saved one
    log.append(_d(load_review_run(run_dir, n_neighbours=0).items[0], "reject", "ann"))
    assert export_review(run_dir).generated == len(fresh_ids)
    assert len(load_review_run(run_dir, n_neighbours=0).items) == len(fresh_ids)


def test_a_failed_export_leaves_the_parquet_corpus_as_it_was(run_dir, monkeypatch):
    """The Parquet corpus is renamed with the other outputs and the manifest: an export that fails
    while writing (here the report, as a full disk would) leaves every one of them unchanged."""
    assert_ok(invoke("data", "convert", run_dir / "corpus.tsv", run_dir / "corpus.parquet"))
    _review(run_dir)
    names = ("corpus.parquet", "corpus.tsv", "corpus.jsonl", "manifest.json")
    before = {n: (run_dir / n).read_bytes() for n in names}

    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("llm_aug.jobs.review.export.review_markdown", full)
    with pytest.raises(UserError, match="no space left|No space left"):
        export_review(run_dir)
    assert {n: (run_dir / n).read_bytes() for n in names} == before
    monkeypatch.undo()
    export_review(run_dir)
    _, rows = read_parquet(run_dir / "corpus.parquet")
    assert [(r["comment"], r["myLabel"], r["synthetic"]) for _, r in rows] == \
        [(c["text"], c["label"], c["synthetic"]) for c in _jsonl(run_dir / "corpus.jsonl")]


def test_a_corpus_with_new_rows_under_the_old_manifest_is_the_generated_one(run_dir):
    """augment killed between its corpus and its manifest: the stamp still matches, but a row the
    saved copy lacks shows corpus.jsonl is newer."""
    run = load_review_run(run_dir, n_neighbours=0)
    ReviewLog(run_dir / REVIEW_FILE).append(_d(run.items[0], "accept", "ann"))
    export_review(run_dir)
    rows = _jsonl(run_dir / "corpus.jsonl")
    new = {**next(r for r in rows if r["synthetic"]), "id": "eda-swap-0123456789ab"}
    (run_dir / "corpus.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rows, new]),
                                          encoding="utf-8")
    assert [it.id for it in load_review_run(run_dir, n_neighbours=0).items][-1] == new["id"]
