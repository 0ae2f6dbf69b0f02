"""What ``prompts optimize`` returns and writes: the typed result and ``report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from llm_aug.jobs.results import JobResult, ResultPart


class Candidate(ResultPart):
    """One prompt the search tried: a template and a fixed exemplar set."""

    id: str = Field(description="'base', or c01, c02, ... in the order tried")
    template: str = Field(description="the template's prompt name")
    path: str = Field(description="the template's file")
    exemplar_ids: list[str] = Field(description="train ids of its exemplars ([] zero-shot)")
    requests: int = Field(description="requests it cost (counted before sending; cached ones are free)")
    cv_folds: list[float] = Field(description="metric on each train fold (its own exemplars left out)")
    cv_score: float = Field(description="mean of cv_folds")


class ValCheck(ResultPart):
    """The winner against the base on val, paired (winner - base)."""

    n: int
    metric: str
    base: float
    winner: float
    delta: float = Field(description="winner - base on all val posts")
    ci: list[float] = Field(description="95% paired bootstrap interval of the delta")
    p_value: float = Field(description="two-sided paired bootstrap p-value")
    deltas: dict[str, dict[str, Any]] = Field(description="every headline metric: delta, ci, p_value")


class OptimizeResult(JobResult):
    """What ``prompts optimize`` found; its JSON is ``OUT/report.json``."""

    base: str
    metric: str
    budget: int
    requests_spent: int = Field(description="requests the search counted and sent (or found cached)")
    pool: int = Field(description="train posts the base labelled correctly (the exemplar pool)")
    candidates: list[Candidate] = Field(description="every prompt tried, the base first")
    skipped: int = Field(description="planned candidates left out: the next would exceed the budget")
    winner: str = Field(description="id of the best candidate on train CV ('base' when none beat it)")
    improved: bool = Field(description="a candidate beat the base on train CV")
    val: ValCheck | None = Field(None, description="the confirmation on val (None when not improved)")
    prompt_file: Path | None = Field(None, description="the winner written as a new prompt version")


def format_report(result: OptimizeResult) -> str:
    """report.md: every candidate with its CV score and cost, then the val check."""
    lines = [f"# prompts optimize: {result.base}", "",
             f"metric {result.metric}; budget {result.budget} requests, spent {result.requests_spent}; "
             f"exemplar pool {result.pool} train posts; {result.skipped} planned candidate(s) over budget", "",
             "| candidate | template | exemplars | CV folds | CV mean | requests |", "|---|---|---|---|---|---|"]
    for c in result.candidates:
        mark = " **winner**" if c.id == result.winner else ""
        lines.append(f"| {c.id}{mark} | {c.template} | {', '.join(c.exemplar_ids) or '-'} | "
                     f"{', '.join(f'{x:.4f}' for x in c.cv_folds)} | {c.cv_score:.4f} | {c.requests} |")
    if result.val is None:
        lines += ["", "No candidate beat the base on train CV: no val check, no prompt written."]
        return "\n".join(lines) + "\n"
    v = result.val
    lines += ["", f"## val check (n = {v.n}, paired bootstrap, winner - base)", "",
              "| metric | delta [95% CI] | p |", "|---|---|---|"]
    lines += [f"| {m} | {d['delta']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}] | {d['p_value']:.3f} |"
              for m, d in v.deltas.items()]
    if "mae" in v.deltas:
        lines += ["", "mae: lower is better, so a positive delta means the winner is worse."]
    lines += ["", f"{v.metric}: base {v.base:.4f} -> winner {v.winner:.4f}", "",
              f"winner written to {result.prompt_file}"]
    return "\n".join(lines) + "\n"
