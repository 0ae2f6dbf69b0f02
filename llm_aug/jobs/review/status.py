"""Where a review stands: progress per level, and agreement between reviewers.

Everything is computed from each reviewer's latest decision per row
(:func:`llm_aug.jobs.review.store.latest`). The outcome compared between reviewers is
the level a row is given (accept, relabel) or ``"reject"``; a skip is no decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from pydantic import BaseModel

from llm_aug.eval.agreement import cohen_kappa, percent_agreement
from llm_aug.jobs.review.items import ReviewRun
from llm_aug.jobs.review.store import Decision, latest, outcome


class LevelProgress(BaseModel):
    """Counts for one level (the level rows were generated for).

    ``decided`` = accepted + rejected + relabelled; a skipped row is still to be decided.
    """

    level: int
    total: int
    decided: int
    accepted: int
    rejected: int
    relabelled: int
    skipped: int


def last_by_row(decisions: Iterable[Decision], reviewer: str | None = None) -> dict[str, Decision]:
    """row id -> its latest decision: by ``reviewer``, or (None) by whichever reviewer decided last."""
    out: dict[str, Decision] = {}
    for d in decisions:  # log order: later decisions supersede earlier ones
        if reviewer is None or d.reviewer == reviewer:
            out[d.row_id] = d
    return out


def progress(run: ReviewRun, decisions: list[Decision], reviewer: str | None = None) -> list[LevelProgress]:
    """Per level of the scheme: rows, and how many are accepted/rejected/relabelled/skipped.

    With ``reviewer``, that reviewer's latest decisions; without, each row's latest
    decision by any reviewer. Decisions on rows the run does not have are ignored.
    """
    counts: dict[int, dict[str, int]] = {lv.level: defaultdict(int) for lv in run.levels}
    for it in run.items:
        counts.setdefault(it.level, defaultdict(int))["total"] += 1
    for row_id, d in last_by_row(decisions, reviewer).items():
        try:
            level = run.item(row_id).level
        except KeyError:
            continue
        counts[level][{"accept": "accepted", "reject": "rejected", "relabel": "relabelled",
                       "skip": "skipped"}[d.decision]] += 1
    return [LevelProgress(level=lv, total=c["total"], decided=c["accepted"] + c["rejected"] + c["relabelled"],
                          accepted=c["accepted"], rejected=c["rejected"], relabelled=c["relabelled"],
                          skipped=c["skipped"]) for lv, c in sorted(counts.items())]


class PairAgreement(BaseModel):
    """How two reviewers agree on the rows both decided (skips left out)."""

    reviewers: tuple[str, str]
    n_both: int
    percent: float | None
    kappa: float | None
    per_level: dict[int, dict]  # level -> {"n": int, "percent": float | None, "kappa": float | None}
    disagreements: list[str]


def outcomes(decisions: Iterable[Decision]) -> dict[str, dict[str, int | str]]:
    """reviewer -> {row id -> outcome} over each reviewer's latest decisions (skips left out)."""
    out: dict[str, dict[str, int | str]] = defaultdict(dict)
    for (row_id, who), d in latest(decisions).items():
        o = outcome(d)
        if o is not None:
            out[who][row_id] = o
    return dict(out)


def _stats(a: list, b: list) -> dict:
    kappa, percent = cohen_kappa(a, b), percent_agreement(a, b)
    return {"n": len(a), "percent": None if percent is None else round(percent, 2),
            "kappa": None if kappa is None else round(kappa, 4)}


def _pair(run: ReviewRun, names: tuple[str, str], x: dict[str, int | str], y: dict[str, int | str]) -> PairAgreement:
    known = {it.id: it.level for it in run.items}
    both = [r for r in x if r in y and r in known]
    a, b = [x[r] for r in both], [y[r] for r in both]
    by_level: dict[int, list[str]] = defaultdict(list)
    for r in both:
        by_level[known[r]].append(r)
    per_level = {lv: _stats([x[r] for r in rows], [y[r] for r in rows]) for lv, rows in sorted(by_level.items())}
    total = _stats(a, b)
    return PairAgreement(reviewers=names, n_both=len(both), percent=total["percent"], kappa=total["kappa"],
                         per_level=per_level, disagreements=[r for r in both if x[r] != y[r]])


def agreement(run: ReviewRun, decisions: list[Decision]) -> list[PairAgreement]:
    """One :class:`PairAgreement` per pair of reviewers (names sorted), on the rows both decided."""
    by_reviewer = outcomes(decisions)
    return [_pair(run, (p, q), by_reviewer[p], by_reviewer[q]) for p, q in combinations(sorted(by_reviewer), 2)]


def disagreeing_rows(decisions: Iterable[Decision]) -> set[str]:
    """Rows on which at least two reviewers' latest (non-skip) decisions differ."""
    seen: dict[str, set] = defaultdict(set)
    for rows in outcomes(decisions).values():
        for row_id, o in rows.items():
            seen[row_id].add(o)
    return {row_id for row_id, found in seen.items() if len(found) > 1}


def reviewers(decisions: Iterable[Decision]) -> list[str]:
    """Names of everyone who decided something, sorted."""
    return sorted({d.reviewer for d in decisions})
