"""The main job in miniature: data -> augmentation -> classifiers -> evaluation -> comparison report.

Runs offline on the fictional demo corpus shipped in ``examples/demo`` (or on any
directory holding ``train.tsv``, ``val.tsv`` and ``test.tsv`` in SOS-1K format).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE, atomic_write_text
from llm_aug.core.manifest import write_manifest
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.data.stats import dataset_stats, split_overlap
from llm_aug.eval.report import compare_runs
from llm_aug.jobs.augment import AugmentConfig, run_augment
from llm_aug.jobs.evaluate import evaluate_predictions
from llm_aug.jobs.results import JobResult, ResultPart
from llm_aug.jobs.train import predict_file, train_model

log = logging.getLogger(__name__)
DEMO_METHODS = ("majority", "tfidf-lr", "tfidf-svm", "stack")
AUGMENTED_METHOD = "tfidf-svm"
# The two pages link to each other: <out>/report/comparison.html and <out>/augmented/report.html.
AUGMENT_DIR, REPORT_DIR = "augmented", "report"
BANNER = ("Demo numbers are not results: {n} fictional posts written for this project, too few and too "
          "uniform to say anything about real posts. For real numbers train on SOS-1K (README, \"Results\").")
NEXT_STEP = ("next: the same steps on your own files, one at a time: llm-aug train --task fine --train train.tsv "
             "--val val.tsv --out runs/stack (README, \"Train, predict, evaluate\")")


class DemoRun(ResultPart):
    """One system of the demo: trained on train, chosen on val, scored on test."""

    system: str
    val_weighted_f1: float = Field(description="weighted F1 on val of the chosen hyper-parameters")
    test_weighted_f1: float | None = Field(description="weighted F1 on test")
    test_ci: list[float] | None = Field(description="its 95% bootstrap interval")


class DemoResult(JobResult):
    """What :func:`run_demo` ran and wrote: the comparison of the systems on test, and the files."""

    markdown: str = Field(description="the comparison table (REPORT_DIR/comparison.md)")
    html: Path | None = Field(description="the comparison page (REPORT_DIR/comparison.html)")
    rows: list[dict[str, Any]] = Field(description="the comparison's row per system (eval.report.compare_runs)")
    title: str = Field(description="the comparison's title: scheme and split")
    split: str = Field(description="the split scored (test)")
    n: str = Field(description="posts scored, as the comparison states it")
    runs: list[DemoRun] = Field(description="per system: val and test weighted F1, in training order")
    sizes: dict[str, int] = Field(description="posts per split (train, val, test)")
    augment_report: Path = Field(description="the augmentation report (each synthetic post beside its source)")
    files: dict[str, str] = Field(description="the split files used")


def _augment(out: Path, splits: dict[str, Path], task: str) -> Path:
    """Balance the training file with synonym replacement (no LLM needed), val protected."""
    cfg = AugmentConfig(method="synonym", task=task, train=splits["train"], out=out, balance="10",
                        protect=[splits["val"], splits["test"]])
    result = run_augment(cfg, report_links=[("Comparison of the demo's classifiers",
                                             f"../{REPORT_DIR}/comparison.html")])
    log.info("augmented training file: %s (exit code %d)", out / "corpus.tsv", result.exit_code)
    return out / "corpus.tsv"


def default_demo_data() -> Path:
    """The repository's ``examples/demo`` folder (present in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "examples" / "demo"


def run_demo(out: Path, data_dir: Path | None = None, task: str = "fine", n_boot: int = 1000) -> DemoResult:
    """Train every baseline on train (selected on val), score it on test, write a comparison."""
    data_dir = data_dir or default_demo_data()
    splits = {s: data_dir / f"{s}.tsv" for s in ("train", "val", "test")}
    missing = [str(p) for p in splits.values() if not p.is_file()]
    if missing:
        raise UserError(f"demo data not found: {', '.join(missing)} (pass --data DIR)")
    scheme = scheme_for_task(task)
    datasets = [load_dataset(p, scheme) for p in splits.values()]
    stats = {"files": [dataset_stats(d) for d in datasets], "overlap": split_overlap(datasets)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "data_stats.json", json.dumps(stats, indent=2, ensure_ascii=False))
    corpus = _augment(out / AUGMENT_DIR, splits, task)
    runs = [(m, m, splits["train"]) for m in DEMO_METHODS]
    runs.append((f"{AUGMENTED_METHOD}+synonym-aug", AUGMENTED_METHOD, corpus))
    run_dirs, summary = [], []
    for name, method, train_file in runs:
        run = out / name
        trained = train_model(task, train_file, splits["val"], run, method=method)
        preds = predict_file(run, splits["test"], run / PREDICTIONS_FILE)
        scored = evaluate_predictions(preds.output, splits["test"], task=task, out_dir=run, n_boot=n_boot)
        run_dirs.append(run)
        summary.append(DemoRun(system=name, val_weighted_f1=trained.val_weighted_f1,
                               test_weighted_f1=scored.weighted_f1, test_ci=scored.ci.get("weighted_f1")))
    sizes = {s: len(d.rows) for s, d in zip(splits, datasets)}
    report = compare_runs(run_dirs, out / REPORT_DIR, split="test", banner=BANNER.format(n=sum(sizes.values())),
                          links=[("Augmentation report (each synthetic post beside its source)",
                                  f"../{AUGMENT_DIR}/report.html")])
    write_manifest(out, "demo", data_files=list(splits.values()),
                   config={"task": task, "methods": list(DEMO_METHODS), "data_dir": str(data_dir)})
    return DemoResult(**report, runs=summary, sizes=sizes, augment_report=out / AUGMENT_DIR / "report.html",
                      files={s: str(p) for s, p in splits.items()})


def format_demo(result: DemoResult) -> str:
    """A few lines for the terminal: per system its val F1 (selection) and test F1 (with CI)."""
    sizes = result.sizes
    lines = [f"weighted F1: hyper-parameters chosen on VAL ({sizes['val']} posts), "
             f"scored on TEST ({sizes['test']} posts); trained on TRAIN ({sizes['train']} posts)",
             f"  {'system':<24} {'val':>6}  test [95% CI]"]
    for row in result.runs:
        ci = row.test_ci
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else ""
        test = row.test_weighted_f1
        test_text = f"{test:.3f}{ci_text}" if isinstance(test, (int, float)) else "n/a"
        lines.append(f"  {row.system:<24} {row.val_weighted_f1:>6.3f}  {test_text}")
    return "\n".join(lines)


def demo_trailer(result: DemoResult, out: Path) -> str:
    """The demo's last lines: both pages, that the numbers are not results, and what to do next."""
    comparison = result.html or out / REPORT_DIR / "comparison.md"
    n = sum(result.sizes.values())
    return "\n".join([f"comparison: {comparison}",
                      f"augmentation report: {result.augment_report} (each synthetic post beside its source)",
                      f"these are demo numbers, not results ({n} fictional posts)",
                      NEXT_STEP])
