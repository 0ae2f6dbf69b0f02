"""Does augmentation help a fixed classifier, and does filtering the augmented rows help more?

Trains one classifier with fixed hyper-parameters (char 1-3-gram TF-IDF + linear SVM,
C=1, balanced class weights; ``--lr`` adds TF-IDF + logistic regression, C=10) on

  (a) SOS-1K fine/train only;
  (b) each of the paper's augmented sets (they already contain the train rows);
  (c) each set after the leakage (vs val), exact/near-duplicate and label-consistency
      filters of ``llm_aug.augment.filters`` -- the relabeller is the same classifier
      trained on train only, tolerance 1 level;
  (c-) the same without the label filter (to separate its effect);
  (d) each set after every default filter (c plus length, language, boilerplate, loop
      and counselling), i.e. what ``llm-aug augment`` would keep.

and prints val weighted F1 with a 95% percentile bootstrap interval over val posts, and
the paired-bootstrap difference against (a). Synthetic rows are the augmented file's
rows minus the train rows (multiset difference by text).

Usage: ``python bench/augment_value.py [--data ../shared/data/sos1k] [--lr] [--n-boot 1000]``
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sklearn.metrics import f1_score

from llm_aug.augment.filters import FilterConfig, apply_filters, rejection_counts
from llm_aug.augment.rows import SynthRow
from llm_aug.classifiers.baselines import TfidfLogReg, TfidfSVM
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.bootstrap import bootstrap_ci, paired_bootstrap

REPO = Path(__file__).resolve().parents[1]
SETS = ("back-translation-1", "back-translation-2", "llms-g-1", "llms-g-2", "llms-g-3",
        "synonym-replacement-1", "synonym-replacement-2")
CLASSIFIERS: dict[str, Callable[[], object]] = {
    "tfidf-svm": lambda: TfidfSVM(C=1.0, ngram_max=3, class_weight="balanced", seed=0),
    "tfidf-lr": lambda: TfidfLogReg(C=10.0, ngram_max=3, class_weight="balanced", seed=0),
}
_HEURISTICS_OFF = {name: {"enabled": False} for name in ("length", "language", "boilerplate", "loop", "counselling")}
VARIANTS = {  # tag: filter config (row label in the table)
    "c": FilterConfig.model_validate(_HEURISTICS_OFF),
    "c-": FilterConfig.model_validate({**_HEURISTICS_OFF, "label": {"enabled": False}}),
    "d": FilterConfig(),
}


def synthetic_rows(augmented: Dataset, train: Dataset, name: str) -> list[SynthRow]:
    """Rows of ``augmented`` beyond the train rows (each train text consumed once)."""
    left = Counter(train.texts)
    out = []
    for i, row in enumerate(augmented.rows):
        if left[row.text] > 0:
            left[row.text] -= 1
            continue
        out.append(SynthRow(id=f"{name}-{i}", text=row.text, label=row.label, method=name))
    return out


def evaluate(make: Callable[[], object], texts: list[str], labels: list[int], val: Dataset,
             labels_all: list[int]) -> tuple[float, list[int]]:
    """Fit on (texts, labels); val weighted F1 and the predictions."""
    pred = [int(p) for p in make().fit(texts, labels).predict(val.texts)]
    return float(f1_score(val.labels, pred, labels=labels_all, average="weighted", zero_division=0)), pred


def run(data: Path, classifier: str, n_boot: int) -> None:
    scheme = scheme_for_task("fine")
    train = load_dataset(data / "fine" / "train.tsv", scheme)
    val = load_dataset(data / "fine" / "val.tsv", scheme)
    make, labels_all = CLASSIFIERS[classifier], scheme.labels
    relabeller = make().fit(train.texts, train.labels)

    def relabel(texts: list[str]) -> list[int]:
        return [int(p) for p in relabeller.predict(texts)]

    base_f1, base_pred = evaluate(make, train.texts, train.labels, val, labels_all)
    print(f"\n### {classifier} (val n={len(val)}, {n_boot} bootstrap resamples)\n")
    print("| training data | rows | synthetic kept | weighted F1 | 95% CI | Δ vs train | p |")
    print("|---|---:|---:|---:|---|---:|---:|")

    def line(name: str, texts: list[str], labels: list[int], kept: str) -> None:
        f1, pred = (base_f1, base_pred) if name == "(a) train" else evaluate(make, texts, labels, val, labels_all)
        lo, hi = bootstrap_ci(val.labels, pred, "weighted_f1", n_boot=n_boot, labels=labels_all)
        diff = paired_bootstrap(val.labels, pred, base_pred, "weighted_f1", n_boot=n_boot, labels=labels_all)
        delta = "—" if name == "(a) train" else f"{diff['delta']:+.3f}"
        p = "—" if name == "(a) train" else f"{diff['p_value']:.2f}"
        print(f"| {name} | {len(texts)} | {kept} | {f1:.3f} | [{lo:.3f}, {hi:.3f}] | {delta} | {p} |")

    line("(a) train", train.texts, train.labels, "0")
    notes = []
    for name in SETS:
        aug = load_dataset(data / "paper-augmented" / f"{name}.tsv", scheme)
        synth = synthetic_rows(aug, train, name)
        line(f"(b) {name}", aug.texts, aug.labels, str(len(synth)))
        for tag, cfg in VARIANTS.items():
            kept, rejected = apply_filters(synth, cfg, train, [val], relabel)
            texts, labels = train.texts + [r.text for r in kept], train.labels + [r.label for r in kept]
            line(f"({tag}) {name} filtered", texts, labels, f"{len(kept)}/{len(synth)}")
            counts = {k: v for k, v in rejection_counts(rejected).items() if v}
            notes.append(f"({tag}) {name}: rejected " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print("\nRejections per filter:\n" + "\n".join(f"- {n}" for n in notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "sos1k")
    parser.add_argument("--lr", action="store_true", help="also the TF-IDF logistic regression")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    for classifier in ["tfidf-svm"] + (["tfidf-lr"] if args.lr else []):
        run(args.data, classifier, args.n_boot)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
