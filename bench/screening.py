"""Risk screening on SOS-1K: calibration, recall-guaranteed thresholds and conformal level sets.

For each task and method: the classifier is fitted on SOS-1K train with its default
hyper-parameters (no selection on val, so val stays a fair evaluation split), and predicts
val (200 posts). Val is then cross-fitted: split into ``--folds`` stratified folds, a
screening profile (calibration map, thresholds, sets; ``llm_aug.jobs.screening.fit_profile``)
is fitted on the other folds (~160 posts, the size of a real calibration split) and applied
to the held-out fold; the held-out rows are pooled, so every val post is scored by a profile
that never saw it. Repeated over ``--repeats`` fold draws: the table gives the median and
the worst repeat (lowest recall / coverage, highest ECE). Test is never read.

Printed: ECE (15 equal-mass bins) on val uncalibrated and after each calibration method;
for the chosen ``--calibrate``: recall, precision, alerts per 1,000 and posts missed at each
recall target (delta 0.1), and whether a threshold with the guarantee existed; coverage and
mean size of the 90% level sets (marginal LAC, Mondrian, ordinal ranges).

Usage: ``python bench/screening.py [--data ../shared/data/sos1k] [--methods tfidf-svm,stack]
[--tasks fine,binary] [--repeats 5] [--folds 5] [--calibrate temperature]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from llm_aug.classifiers.calibration import CALIBRATION_METHODS
from llm_aug.classifiers.methods import build
from llm_aug.classifiers.registry import get_method
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.calibration import expected_calibration_error
from llm_aug.eval.conformal import coverage_report
from llm_aug.eval.risk_control import high_risk_truth, operating_point
from llm_aug.jobs.screening import fit_profile, screen_rows

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("recall=0.9", "recall=0.95")
KINDS = ("marginal", "mondrian", "ordinal")


def val_proba(method: str, task: str, data: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray, object]:
    """Val probabilities of ``method`` fitted on train (defaults), val gold columns, the scheme."""
    scheme = scheme_for_task(task)
    train = load_dataset(data / task / "train.tsv", scheme)
    val = load_dataset(data / task / "val.tsv", scheme)
    est = build(get_method(method), {}, seed).fit(train.texts, train.labels)
    proba = np.asarray(est.predict_proba(val.texts), dtype=float)
    column = {label: j for j, label in enumerate(scheme.labels)}
    full = np.zeros((len(val), len(scheme.labels)))
    for j, cls in enumerate(est.classes_):
        full[:, column[int(cls)]] = proba[:, j]
    return full, np.array([column[y] for y in val.labels]), scheme


def cross_fit(proba: np.ndarray, y: np.ndarray, scheme: object, calibrate: str, folds: int,
              seed: int) -> dict:
    """One repeat: every val row screened by a profile fitted on the other folds; pooled metrics."""
    cal = np.zeros_like(proba)
    screened: list[dict] = [{}] * len(y)
    sets: dict[str, list] = {k: [None] * len(y) for k in KINDS}
    for fit_idx, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(proba, y):
        profile, calibrator = fit_profile(proba[fit_idx], y[fit_idx], scheme, targets=TARGETS,
                                          calibrate=calibrate, seed=seed)
        cal[held] = calibrator.predict_proba(proba[held])
        for kind in KINDS:
            rows = screen_rows(profile, calibrator, proba[held], kind)
            column = {lv: j for j, lv in enumerate(scheme.labels)}
            for i, r in zip(held, rows):
                sets[kind][i] = [column[lv] for lv in r["levels"]]
                screened[i] = r
    labels = scheme.labels
    y_high = high_risk_truth([labels[j] for j in y], labels)
    out = {"ece": expected_calibration_error(cal, y)}
    for name in screened[0]["alerts"]:
        # Each fold has its own threshold: score the pooled alerts, not one threshold.
        flagged = np.array([r["alerts"][name] for r in screened], dtype=float)
        out[name] = operating_point(flagged, y_high, 0.5)
    out["sets"] = {k: coverage_report(v, y, labels) for k, v in sets.items()}
    return out


def _ece_row(proba: np.ndarray, y: np.ndarray, scheme: object, folds: int, repeats: int) -> dict[str, str]:
    """ECE on val by calibration method, cross-fitted (median over repeats, worst in brackets)."""
    row = {"none": f"{expected_calibration_error(proba, y):.3f}"}
    for method in CALIBRATION_METHODS[1:]:
        values = [cross_fit(proba, y, scheme, method, folds, r)["ece"] for r in range(repeats)]
        row[method] = f"{statistics.median(values):.3f} ({max(values):.3f})"
    return row


def report(task: str, method: str, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    proba, y, scheme = val_proba(method, task, args.data)
    eces = _ece_row(proba, y, scheme, args.folds, args.repeats)
    runs = [cross_fit(proba, y, scheme, args.calibrate, args.folds, r) for r in range(args.repeats)]
    print(f"\n## {task} / {method} (val n={len(y)}, high-risk {int(high_risk_truth([scheme.labels[j] for j in y], scheme.labels).sum())}; "
          f"{time.perf_counter() - t0:.0f} s)\n")
    print("| ECE | " + " | ".join(eces) + " |\n|---|" + "---|" * len(eces))
    print("| val | " + " | ".join(eces.values()) + " |\n")
    print(f"calibration for the rows below: {args.calibrate}; median over {args.repeats} repeats (worst)\n")
    print("| target | recall | precision | alerts / 1,000 | missed |\n|---|---|---|---|---|")
    for name in (k for k in runs[0] if k.startswith("recall")):
        ops = [r[name] for r in runs]
        worst = min(ops, key=lambda o: o["recall"] or 0)

        def med(key: str) -> float:
            return statistics.median(o[key] or 0 for o in ops)
        print(f"| {name} | {med('recall'):.3f} ({worst['recall']:.3f}) | {med('precision'):.3f} | "
              f"{med('alert_rate_per_1000'):.0f} | {med('missed'):.0f} ({worst['missed']}) |")
    print("\n| 90% sets | coverage | mean size |\n|---|---|---|")
    for kind in KINDS:
        cov = [r["sets"][kind]["coverage"] for r in runs]
        size = [r["sets"][kind]["mean_size"] for r in runs]
        print(f"| {kind} | {statistics.median(cov):.3f} ({min(cov):.3f}) | {statistics.median(size):.2f} |")


def main() -> None:
    import logging

    logging.getLogger("llm_aug.eval.conformal").setLevel(logging.ERROR)  # Mondrian's small-level note, per fold
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "sos1k")
    parser.add_argument("--methods", default="tfidf-svm,stack")
    parser.add_argument("--tasks", default="fine,binary")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--calibrate", default="temperature", choices=CALIBRATION_METHODS)
    args = parser.parse_args()
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            report(task, method, args)


if __name__ == "__main__":
    main()
