"""Two reviewers on one real augment run: progress, percent agreement and Cohen's kappa (overall, per level)."""

from __future__ import annotations

import json
import math

import pytest
from sklearn.metrics import cohen_kappa_score

from augment_run import make_run
from llm_aug.eval.agreement import cohen_kappa, percent_agreement
from llm_aug.jobs.review.items import load_review_run
from llm_aug.jobs.review.status import agreement, disagreeing_rows, progress
from llm_aug.jobs.review.store import REVIEW_FILE, Decision, ReviewLog


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return load_review_run(make_run(tmp_path_factory.mktemp("review-agree")))


def _decide(item, kind: str, who: str, level: int | None = None) -> Decision:
    if kind == "accept":
        return Decision(row_id=item.id, decision="accept", level=item.level, reviewer=who)
    if kind == "relabel":
        return Decision(row_id=item.id, decision="relabel", level=level, reviewer=who)
    if kind == "reject":
        return Decision(row_id=item.id, decision="reject", reason="implausible", reviewer=who)
    return Decision(row_id=item.id, decision="skip", reviewer=who)


def _two_reviewers(run) -> list[Decision]:
    """ann and bob disagree on some rows in a pattern that varies by level (so per-level kappas differ)."""
    out = []
    for i, it in enumerate(run.items):
        a = "reject" if i % 4 == 0 else "accept"
        b = "reject" if i % 4 == 0 or (i % 7 == 0 and it.level > 5) else "accept"
        if i % 9 == 5:
            b = "relabel"
        out.append(_decide(it, a, "ann"))
        out.append(_decide(it, b, "bob", level=(it.level + 1) % 11))
    out.append(_decide(run.items[1], "skip", "carol"))
    return out


def _outcome(d: Decision):
    return "reject" if d.decision == "reject" else d.level


def test_kappa_matches_sklearn_overall_and_per_level(run, tmp_path):
    log = ReviewLog(tmp_path / REVIEW_FILE)
    for d in _two_reviewers(run):
        log.append(d)
    decisions = log.read()
    pairs = agreement(run, decisions)
    # carol only skipped: she has decided nothing, so there is one pair
    assert [p.reviewers for p in pairs] == [("ann", "bob")]
    pair = pairs[0]
    ann = {d.row_id: _outcome(d) for d in decisions if d.reviewer == "ann"}
    bob = {d.row_id: _outcome(d) for d in decisions if d.reviewer == "bob"}
    ids = [it.id for it in run.items]
    expect = cohen_kappa_score([str(ann[i]) for i in ids], [str(bob[i]) for i in ids])
    assert pair.n_both == len(ids)
    assert pair.kappa == pytest.approx(expect, abs=1e-4) and 0 < pair.kappa < 1
    assert pair.percent == pytest.approx(100 * sum(ann[i] == bob[i] for i in ids) / len(ids), abs=0.01)
    assert set(pair.disagreements) == {i for i in ids if ann[i] != bob[i]} == disagreeing_rows(decisions)
    levels = {it.id: it.level for it in run.items}
    kappas = set()
    for lv, stats in pair.per_level.items():
        rows = [i for i in ids if levels[i] == lv]
        a, b = [str(ann[i]) for i in rows], [str(bob[i]) for i in rows]
        assert stats["n"] == len(rows)
        want = cohen_kappa_score(a, b) if len(set(a) | set(b)) > 1 else None
        assert stats["kappa"] == (None if want is None or math.isnan(want) else pytest.approx(want, abs=1e-4))
        kappas.add(stats["kappa"])
    assert len(kappas) > 2  # the levels really differ
    json.dumps(pair.model_dump(mode="json"), allow_nan=False)  # never NaN in JSON


def test_latest_decision_counts_and_skips_are_not_compared(run):
    a, b = run.items[0], run.items[1]
    ds = [_decide(a, "reject", "ann"), _decide(a, "accept", "ann"), _decide(a, "accept", "bob"),
          _decide(b, "accept", "ann"), _decide(b, "skip", "bob")]
    pair = agreement(run, ds)[0]
    assert pair.n_both == 1 and pair.percent == 100.0 and pair.disagreements == []
    assert pair.kappa is None  # one row: undefined
    assert disagreeing_rows(ds) == set()


def test_kappa_undefined_when_one_category_only(run):
    level0 = [it for it in run.items if it.level == 0]
    ds = [_decide(it, "accept", who) for it in level0 for who in ("ann", "bob")]
    pair = agreement(run, ds)[0]
    assert pair.n_both == len(level0) > 2 and pair.percent == 100.0 and pair.kappa is None
    assert pair.per_level == {0: {"n": len(level0), "percent": 100.0, "kappa": None}}
    # accepting rows of two levels is two outcomes: full agreement, kappa 1
    two = [_decide(it, "accept", who) for it in run.items if it.level < 2 for who in ("ann", "bob")]
    assert agreement(run, two)[0].kappa == 1.0
    assert cohen_kappa([], []) is None and percent_agreement([], []) is None
    assert cohen_kappa(["a", "a"], ["b", "b"]) == pytest.approx(cohen_kappa_score(["a", "a"], ["b", "b"]))


def test_three_reviewers_give_three_pairs(run):
    ds = [_decide(it, "accept" if (i + n) % 3 else "reject", who)
          for i, it in enumerate(run.items[:30]) for n, who in enumerate(("cy", "ann", "bob"))]
    assert [p.reviewers for p in agreement(run, ds)] == [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]


def test_progress_per_reviewer_and_merged(run):
    items = run.items
    ds = [_decide(items[0], "accept", "ann"), _decide(items[1], "reject", "ann"),
          _decide(items[2], "relabel", "ann", level=(items[2].level + 2) % 11), _decide(items[3], "skip", "ann"),
          _decide(items[0], "reject", "bob"), _decide(items[4], "accept", "bob"),
          Decision(row_id="not-a-row", decision="skip", reviewer="bob")]
    mine = {p.level: p for p in progress(run, ds, "ann")}
    assert sum(p.total for p in mine.values()) == len(items)
    assert sum(p.decided for p in mine.values()) == 3
    assert (sum(p.accepted for p in mine.values()), sum(p.rejected for p in mine.values()),
            sum(p.relabelled for p in mine.values()), sum(p.skipped for p in mine.values())) == (1, 1, 1, 1)
    assert mine[items[2].level].relabelled == 1  # counted at the level the row was made for
    merged = progress(run, ds)
    assert sum(p.decided for p in merged) == 4  # items 0 (bob's later reject), 1, 2, 4
    assert sum(p.rejected for p in merged) == 2
