"""Prompt A/B: run two prompts on the same items through one cached runner and report what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Generic, Mapping, TypeVar

import jsonlines
from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE, atomic_write, atomic_write_text
from llm_aug.core.lock import locks_output
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.bootstrap import paired_bootstrap
from llm_aug.eval.metrics import headline_metrics
from llm_aug.eval.report import compare_runs
from llm_aug.eval.results import score_predictions, write_results
from llm_aug.jobs.classify import prediction_counts
from llm_aug.jobs.results import JobResult, ResultPart
from llm_aug.llm import LLMConfig, build_runner, load_llm_config
from llm_aug.llm.batch import BatchMode, JobCall
from llm_aug.llm.runner import Runner
from llm_aug.prompting.classify import ClassifyConfig, classify_dataset, load_checked_prompt

# Files written at the top of the output directory (the prompts' runs go in subdirectories).
_WRITES = ("flips.jsonl", "prompt_compare.json", "manifest.json", "comparison.md", "comparison.html")
T = TypeVar("T")


class PerPrompt(ResultPart, Generic[T]):
    """One value for each prompt: ``a`` (the baseline) and ``b`` (the candidate)."""

    a: T
    b: T


class MetricDelta(ResultPart):
    """One headline metric under both prompts and B - A with its paired bootstrap interval."""

    a: float | None = Field(description="the metric under prompt A (None where undefined)")
    b: float | None = Field(description="the metric under prompt B")
    delta: float = Field(description="B - A on all items")
    ci: list[float] = Field(description="95% paired bootstrap interval of the delta, [low, high]")
    p_value: float = Field(description="two-sided paired bootstrap p-value")


class CompareReport(JobResult):
    """What ``prompts compare`` found; its JSON is ``OUT/prompt_compare.json``, key for key."""

    omit_unset: ClassVar[frozenset[str]] = frozenset({"html"})
    a: str = Field(description="prompt A's name")
    b: str = Field(description="prompt B's name")
    n: int = Field(description="items scored")
    deltas: dict[str, MetricDelta] = Field(description="per headline metric: both values and B - A")
    per_class_f1_delta: dict[str, float] = Field(description="per level: F1 of B - F1 of A, 4 decimals")
    invalid_rate: PerPrompt[float] = Field(description="share of replies without a valid label")
    flips: int = Field(description="items whose prediction changed")
    flips_file: Path = Field(description="those items with both replies (flips.jsonl)")
    ok: PerPrompt[int] = Field(description="rows answered")
    failed: PerPrompt[int] = Field(description="rows that ended in error (no prediction)")
    predictions: PerPrompt[Path] = Field(description="each prompt's predictions JSONL")
    html: Path | None = Field(None, description="comparison.html (only with html=True; absent otherwise)")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _run_prompt(name: str, data: Dataset, gold: Dataset, scheme: LabelScheme, runner: Runner,
                cfg: ClassifyConfig, out: Path, train: Dataset | None, n_boot: int) -> tuple[Path, dict]:
    run_dir = out / _slug(name)
    preds = run_dir / PREDICTIONS_FILE
    summary = classify_dataset(data, scheme, runner, cfg.model_copy(update={"prompt": name}), preds, train=train)
    results = score_predictions(preds, gold, scheme, n_boot=n_boot)
    results["usage"] = summary.to_manifest()
    write_results(run_dir, results, scheme, name=name)
    return preds, results


def _flips(preds_a: Path, preds_b: Path, gold: Dataset, out_path: Path) -> int:
    rows_a = {r["id"]: r for r in jsonlines.open(preds_a)}
    rows_b = {r["id"]: r for r in jsonlines.open(preds_b)}
    flips = []
    for row in gold.rows:
        a, b = rows_a[row.id], rows_b[row.id]
        if a["pred"] != b["pred"]:
            flips.append({"id": row.id, "text": row.text, "gold": row.label, "pred_a": a["pred"],
                          "pred_b": b["pred"], "raw_a": a.get("raw"), "raw_b": b.get("raw"),
                          "better": "a" if a["pred"] == row.label else ("b" if b["pred"] == row.label else None)})
    atomic_write(out_path, lambda fh: jsonlines.Writer(fh).write_all(flips))
    return len(flips)


@locks_output("out")
def compare_prompts(prompt_a: str, prompt_b: str, task: Task | str, input_file: str | Path, *,
                    llm: LLMConfig | Mapping[str, Any], out: str | Path = "runs/prompt-compare",
                    gold: str | Path | None = None, config: ClassifyConfig | None = None,
                    train: str | Path | None = None, n_boot: int = 1000, html: bool = False,
                    runner: Runner | None = None, batch: BatchMode | None = None) -> CompareReport:
    """The ``prompts compare`` job on files: both prompts checked first, then run, scored, written.

    ``batch``: both prompts' requests go to batch files (one cycle per prompt still
    unanswered); ``jobs.batch_collect`` finishes the run.
    """
    cfg, out = config or ClassifyConfig(), Path(out)
    scheme = scheme_for_task(task)
    llm = load_llm_config(llm)
    check_outputs(out_dir=out, inputs=(input_file, gold, train), writes=_WRITES, cache=llm.runner.cache_path)
    for name in (prompt_a, prompt_b):
        load_checked_prompt(scheme, cfg.model_copy(update={"prompt": name}), has_train=train is not None)
    data = load_dataset(input_file, scheme, require_labels=False)
    gold_data = load_dataset(gold or input_file, scheme)
    train_data = load_dataset(train, scheme) if train else None
    if batch is not None:
        if runner is not None:
            raise ValueError("give batch= or runner=, not both (a runner has its dispatch already)")
        batch.job = JobCall.of("compare_prompts", prompt_a=prompt_a, prompt_b=prompt_b, task=scheme.task,
                               input_file=Path(input_file), llm=llm, out=out,
                               gold=Path(gold) if gold else None, config=cfg,
                               train=Path(train) if train else None, n_boot=n_boot, html=html)
    report = compare_datasets(prompt_a, prompt_b, data, gold_data, scheme, runner or build_runner(llm, batch=batch),
                              cfg, out, train=train_data, n_boot=n_boot, html=html)
    files = [Path(p) for p in (input_file, gold, train) if p]
    write_manifest(out, "prompts compare", data_files=files, seed=cfg.seed,
                   config={"a": prompt_a, "b": prompt_b, "classify": cfg.model_dump(),
                           "llm": llm.model_dump(mode="json")})
    return report


def compare_datasets(prompt_a: str, prompt_b: str, data: Dataset, gold: Dataset, scheme: LabelScheme,
                     runner: Runner, cfg: ClassifyConfig, out: Path, *, train: Dataset | None = None,
                     n_boot: int = 1000, html: bool = False) -> CompareReport:
    """Classify ``data`` with both prompts, score on ``gold``; deltas are B - A with paired CIs."""
    if prompt_a == prompt_b:
        raise UserError("compare needs two different prompts")
    out.mkdir(parents=True, exist_ok=True)
    preds_a, res_a = _run_prompt(prompt_a, data, gold, scheme, runner, cfg, out, train, n_boot)
    preds_b, res_b = _run_prompt(prompt_b, data, gold, scheme, runner, cfg, out, train, n_boot)
    gold_labels = res_a["items"]["gold"]
    deltas = {}
    for metric in headline_metrics(scheme):
        test = paired_bootstrap(gold_labels, res_b["items"]["pred"], res_a["items"]["pred"], metric,
                                n_boot=n_boot, labels=scheme.labels)
        deltas[metric] = {"a": res_a.get(metric), "b": res_b.get(metric), "delta": test["delta"],
                          "ci": list(test["ci"]), "p_value": test["p_value"]}
    per_class = {lab: round(res_b["per_class"][lab]["f1"] - res_a["per_class"][lab]["f1"], 4)
                 for lab in res_a["per_class"]}
    n_flips = _flips(preds_a, preds_b, gold, out / "flips.jsonl")
    extra = {}
    if html:
        extra["html"] = compare_runs([preds_a.parent, preds_b.parent], out, n_boot=n_boot)["html"]
    report = CompareReport(a=prompt_a, b=prompt_b, n=res_a["n"], deltas=deltas, per_class_f1_delta=per_class,
                           invalid_rate=PerPrompt(a=res_a["invalid_rate"], b=res_b["invalid_rate"]),
                           flips=n_flips, flips_file=out / "flips.jsonl", **_row_counts(preds_a, preds_b), **extra)
    atomic_write_text(out / "prompt_compare.json", json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    return report


def _row_counts(preds_a: Path, preds_b: Path) -> dict[str, PerPrompt[Any]]:
    """Rows answered and rows failed per prompt, and where their predictions are."""
    (ok_a, failed_a), (ok_b, failed_b) = prediction_counts(preds_a), prediction_counts(preds_b)
    return {"ok": PerPrompt[int](a=ok_a, b=ok_b), "failed": PerPrompt[int](a=failed_a, b=failed_b),
            "predictions": PerPrompt[Path](a=preds_a, b=preds_b)}


def format_report(report: CompareReport) -> str:
    """The comparison as a short Markdown table."""
    lines = [f"A = {report.a}   B = {report.b}   n = {report.n}", "",
             "| metric | A | B | B - A [95% CI] | p |", "|---|---|---|---|---|"]
    for metric, d in report.deltas.items():
        a, b = (f"{v:.4f}" if v is not None else "n/a" for v in (d.a, d.b))
        lines.append(f"| {metric} | {a} | {b} | {d.delta:+.4f} [{d.ci[0]:+.4f}, {d.ci[1]:+.4f}] "
                     f"| {d.p_value:.3f} |")
    inv = report.invalid_rate
    lines += ["", f"invalid rate: A {inv.a:.3f} -> B {inv.b:.3f}",
              "per-class F1 change (B - A): " + "  ".join(f"{k}:{v:+.2f}" for k, v in report.per_class_f1_delta.items()),
              f"{report.flips} items changed prediction: {report.flips_file}"]
    if report.failed.a or report.failed.b:
        lines.append(f"failed rows (no prediction): A {report.failed.a}, B {report.failed.b}")
    return "\n".join(lines)
