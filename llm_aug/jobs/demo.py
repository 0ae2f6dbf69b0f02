"""The main job in miniature: data -> augmentation -> classifiers -> evaluation -> comparison report.

Runs offline on the fictional demo corpus shipped in ``examples/demo`` (or on any
directory holding ``train.tsv``, ``val.tsv`` and ``test.tsv`` in SOS-1K format).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llm_aug.eval.report import compare_runs
from llm_aug.jobs.augment import AugmentConfig, run_augment
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.data.stats import dataset_stats, split_overlap
from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE
from llm_aug.core.manifest import write_manifest
from llm_aug.jobs.evaluate import evaluate_predictions
from llm_aug.jobs.train import predict_file, train_model

log = logging.getLogger(__name__)
DEMO_METHODS = ("majority", "tfidf-lr", "tfidf-svm", "stack")
AUGMENTED_METHOD = "tfidf-svm"


def _augment(out: Path, splits: dict[str, Path], task: str) -> Path:
    """Balance the training file with synonym replacement (no LLM needed), val protected."""
    cfg = AugmentConfig(method="synonym", task=task, train=splits["train"], out=out, balance="10",
                        protect=[splits["val"], splits["test"]])
    result = run_augment(cfg)
    log.info("augmented training file: %s (exit code %d)", out / "corpus.tsv", result.exit_code)
    return out / "corpus.tsv"


def default_demo_data() -> Path:
    """The repository's ``examples/demo`` folder (present in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "examples" / "demo"


def run_demo(out: Path, data_dir: Path | None = None, task: str = "fine", n_boot: int = 1000) -> dict:
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
    (out / "data_stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    corpus = _augment(out / "augmented", splits, task)
    runs = [(m, m, splits["train"]) for m in DEMO_METHODS]
    runs.append((f"{AUGMENTED_METHOD}+synonym-aug", AUGMENTED_METHOD, corpus))
    run_dirs = []
    for name, method, train_file in runs:
        run = out / name
        train_model(task, train_file, splits["val"], run, method=method)
        preds = predict_file(run, splits["test"], run / PREDICTIONS_FILE)
        evaluate_predictions(preds, splits["test"], task=task, out_dir=run, n_boot=n_boot)
        run_dirs.append(run)
    report = compare_runs(run_dirs, out / "report")
    write_manifest(out, "demo", data_files=list(splits.values()),
                   config={"task": task, "methods": list(DEMO_METHODS), "data_dir": str(data_dir)})
    return report
