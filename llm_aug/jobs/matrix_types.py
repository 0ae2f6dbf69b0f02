"""The typed result of the prompt matrix (``OUT/matrix.json``, key for key) and its Markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from llm_aug.jobs.results import JobResult, ResultPart


class Cell(ResultPart):
    """One setting of the matrix: a prompt on a model with a shot setting."""

    prompt: str
    model: str
    shots: int = 0
    shot_strategy: str = "similar"

    @property
    def label(self) -> str:
        """``prompt@model@shots`` (zero shots) or ``prompt@model@shots/strategy``: what --baseline takes."""
        shots = f"{self.shots}/{self.shot_strategy}" if self.shots else "0"
        return f"{self.prompt}@{self.model}@{shots}"


class CellCost(ResultPart):
    """What the cell's run cost (from the runner's RunSummary; cached answers cost no request)."""

    requests: int = Field(description="backend requests, retries included")
    prompt_tokens: int
    completion_tokens: int
    seconds: float = Field(description="the run's wall time")
    cached: int = Field(0, description="items answered from the request cache")
    cost_usd: float | None = Field(None, description="with prices in the LLM config")


class CellDelta(ResultPart):
    """Cell - baseline on one metric, with its paired bootstrap interval and p-values."""

    delta: float
    ci: list[float] = Field(description="95% paired bootstrap interval, [low, high]")
    p_value: float = Field(description="two-sided paired bootstrap p-value")
    p_holm: float | None = Field(None, description="Holm-adjusted across the matrix's cells (this metric)")


class CellResult(ResultPart):
    """One cell's scores, its difference from the baseline, its cost and its files."""

    prompt: str
    model: str
    shots: int
    shot_strategy: str
    label: str
    dir: Path = Field(description="the cell's run directory (predictions, results.json, flips.jsonl)")
    predictions: Path
    n: int
    metrics: dict[str, float | None]
    ci: dict[str, list[float]] = Field(description="95% bootstrap interval per metric")
    per_class_f1: dict[str, float]
    invalid_rate: float
    ok: int
    failed: int
    cost: CellCost
    vs_baseline: dict[str, CellDelta] | None = Field(None, description="None for the baseline cell")
    per_class_f1_delta: dict[str, float] | None = None
    flips: int | None = Field(None, description="items whose prediction differs from the baseline's")
    flips_file: Path | None = None


class Gate(ResultPart):
    """The regression gate's verdict: cells significantly worse than the baseline by more than ``margin``."""

    metric: str
    margin: float
    alpha: float
    p_raw: dict[str, float] = Field(description="one-sided paired bootstrap p-value per cell")
    p_holm: dict[str, float] = Field(description="Holm-adjusted across the cells")
    worse: list[str] = Field(description="cells with p_holm < alpha")
    passed: bool


class MatrixReport(JobResult):
    """What the prompt matrix found; ``OUT/matrix.json``."""

    omit_unset: ClassVar[frozenset[str]] = frozenset({"html"})
    n: int = Field(description="items scored")
    baseline: str = Field(description="the baseline cell's label")
    metrics: list[str]
    cells: list[CellResult]
    gate: Gate | None = None
    skipped: dict[str, str] = Field(default_factory=dict, description="cells left out: their prompt does "
                                    "not take that shot setting (the reason)")
    html: Path | None = None


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def format_matrix(report: MatrixReport) -> str:
    """The matrix as a Markdown table: one row per cell, the first metric's delta with its CI."""
    m0 = report.metrics[1] if len(report.metrics) > 1 else report.metrics[0]  # weighted_f1 leads
    head = " | ".join(report.metrics)
    lines = [f"baseline = {report.baseline}   n = {report.n}", "",
             f"| # | cell | {head} | {m0} - base [95% CI] | p (Holm) | flips | requests | tokens | s |",
             "|" + "---|" * (len(report.metrics) + 8)]
    for i, c in enumerate(report.cells):
        vals = " | ".join(_fmt(c.metrics.get(m)) for m in report.metrics)
        d = (c.vs_baseline or {}).get(m0)
        delta = f"{d.delta:+.4f} [{d.ci[0]:+.4f}, {d.ci[1]:+.4f}]" if d else "baseline"
        p = f"{d.p_holm:.3f}" if d and d.p_holm is not None else ""
        tokens = c.cost.prompt_tokens + c.cost.completion_tokens
        lines.append(f"| {i} | {c.label} | {vals} | {delta} | {p} | {c.flips if c.flips is not None else ''} "
                     f"| {c.cost.requests} | {tokens} | {c.cost.seconds:.1f} |")
    if report.gate is not None:
        g = report.gate
        verdict = "pass" if g.passed else "FAIL: " + ", ".join(g.worse)
        lines += ["", f"gate {g.metric} (margin {g.margin}, one-sided, Holm, alpha {g.alpha}): {verdict}"]
    if report.skipped:
        lines.append("skipped (the prompt does not take that shot setting): " + ", ".join(report.skipped))
    failed = [c.label for c in report.cells if c.failed]
    if failed:
        lines.append("cells with failed rows: " + ", ".join(failed))
    return "\n".join(lines)
