"""Python API behind ``llm-aug evaluate``: load gold, score, write results.json and a manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from llm_aug.core.files import CONFUSION_FILE, RESULTS_FILE
from llm_aug.core.manifest import write_manifest
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.metrics import METRICS
from llm_aug.eval.results import score_predictions, write_results
from llm_aug.jobs.results import JobResult, ResultPart


class ClassScores(ResultPart):
    """One level's scores."""

    name: str | None = Field(description="the level's name in the scheme")
    precision: float
    recall: float
    f1: float
    support: int = Field(description="gold posts of this level")
    predicted: int = Field(description="posts predicted as this level")
    invalid: int = Field(description="posts of this level without a valid prediction")


class BinaryScores(ResultPart):
    """Predictions collapsed at ``threshold`` scored against the binary gold (high risk = 1)."""

    omit_unset: ClassVar[frozenset[str]] = frozenset({"ci"})
    threshold: int = Field(description="level at or above which a prediction counts as high risk")
    n: int
    accuracy: float
    weighted_f1: float
    macro_f1: float
    invalid_rate: float
    confusion: list[list[int]] = Field(description="rows gold 0/1, columns predicted 0/1")
    f1: float = Field(description="high-risk F1")
    precision: float = Field(description="high-risk precision")
    recall: float = Field(description="high-risk recall")
    support: int = Field(description="high-risk gold posts")
    ci: dict[str, list[float]] = Field(default_factory=dict, description="95% bootstrap intervals "
                                       "(accuracy, weighted_f1, macro_f1); absent with n_boot=0")


class ScoredItems(ResultPart):
    """The aligned items, for paired tests between runs."""

    ids: list[str]
    gold: list[int]
    pred: list[int | None] = Field(description="None where the prediction is not a valid label")


class EvaluateResult(JobResult):
    """What :func:`evaluate_predictions` scored; its JSON is what ``evaluate --json`` prints.

    ``results.json`` holds the same keys (and ``system``). The ordinal metrics (``mae``,
    ``qwk``, ``within1``, ``ordinal_n``) are present for an ordinal scheme (fine) only,
    ``binary`` only with a binary gold file.
    """

    omit_unset: ClassVar[frozenset[str]] = frozenset({"mae", "qwk", "within1", "ordinal_n", "binary"})
    task: str
    scheme: str = Field(description="the label scheme's name")
    predictions: str = Field(description="the predictions file scored")
    gold: str | None = Field(description="the gold file")
    gold_sha256: str | None
    binary_gold: str | None
    n_boot: int = Field(description="bootstrap resamples for the intervals (0: none)")
    seed: int
    alpha: float = Field(description="1 - the intervals' coverage")
    n: int = Field(description="items scored")
    accuracy: float
    weighted_f1: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    macro_precision: float
    macro_recall: float
    invalid_rate: float = Field(description="share of items without a valid prediction")
    mae: float | None = Field(None, description="mean absolute level error (ordinal schemes)")
    qwk: float | None = Field(None, description="quadratic weighted kappa (ordinal schemes)")
    within1: float | None = Field(None, description="share within one level (ordinal schemes)")
    ordinal_n: int | None = Field(None, description="items with a valid prediction the ordinal metrics use")
    labels: list[int]
    per_class: dict[str, ClassScores] = Field(description="per level (as a string)")
    confusion: list[list[int]] = Field(description="rows gold, columns predicted, in labels order")
    binary: BinaryScores | None = None
    ci: dict[str, list[float]] = Field(description="95% bootstrap intervals of the headline metrics")
    items: ScoredItems


def infer_task(gold_path: Path, load_kwargs: dict[str, Any]) -> str:
    """``binary`` when every gold label is 0 or 1, else ``fine``."""
    labels = set(load_dataset(gold_path, None, **load_kwargs).labels)
    return "binary" if labels <= {0, 1} else "fine"


def evaluate_predictions(pred_path: str | Path, gold_path: str | Path, *, task: Task | str | None = None,
                         binary_gold: str | Path | None = None, threshold: int | None = None,
                         out_dir: str | Path | None = None, n_boot: int = 1000,
                         load_kwargs: dict[str, Any] | None = None) -> EvaluateResult:
    """Score ``pred_path`` against ``gold_path``; write results.json, confusion.png and a manifest."""
    kwargs = load_kwargs or {}
    scheme: LabelScheme = scheme_for_task(task or infer_task(gold_path, kwargs))
    gold = load_dataset(gold_path, scheme, **kwargs)
    bgold = load_dataset(binary_gold, scheme_for_task("binary"), **kwargs) if binary_gold else None
    results = score_predictions(pred_path, gold, scheme, binary_gold=bgold, threshold=threshold, n_boot=n_boot)
    out = results_dir(pred_path, out_dir)
    write_results(out, results, scheme)
    files = [gold_path, pred_path] + ([binary_gold] if binary_gold else [])
    write_manifest(out, "evaluate", data_files=files, name="results.manifest.json",
                   config={"task": scheme.task, "threshold": threshold, "n_boot": n_boot})
    return EvaluateResult.model_validate(results)


def results_dir(pred_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where :func:`evaluate_predictions` writes results.json and confusion.png."""
    return Path(out_dir) if out_dir else Path(pred_path).parent


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def format_results(results: EvaluateResult | Mapping[str, Any], out_dir: str | Path | None = None) -> str:
    """The terminal report of ``llm-aug evaluate`` (of an :class:`EvaluateResult` or a results.json).

    Headline metrics with their bootstrap CIs, weighted and macro precision/recall, a
    per-class table (precision, recall, F1, support), the collapsed binary scores when
    present and, given ``out_dir``, a last line naming results.json and confusion.png.
    """
    from llm_aug.eval.report import split_of, split_title

    if isinstance(results, EvaluateResult):
        results = results.to_json()
    lines = [f"{split_title(split_of(results), results['n'])}: n={results['n']}  "
             f"invalid_rate={results.get('invalid_rate', 0):.3f}"]
    cis = results.get("ci", {})
    for key in METRICS:
        if key not in results:
            continue
        lo, hi = cis.get(key, (None, None))
        ci = f"  [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None else ""
        lines.append(f"{key:<18} {_num(results[key])}{ci}")
    for key in ("weighted_precision", "weighted_recall", "macro_precision", "macro_recall"):
        if key in results:
            lines.append(f"{key:<18} {_num(results[key])}")
    per_class = results.get("per_class") or {}
    if per_class:
        width = max(len(f"{label} {row.get('name') or ''}".strip()) for label, row in per_class.items())
        width = max(width, len("label"))
        lines += ["", f"{'label':<{width}}  precision  recall      f1  support"]
        for label, row in per_class.items():
            name = f"{label} {row.get('name') or ''}".strip()
            lines.append(f"{name:<{width}}  {_num(row.get('precision')):>9}  {_num(row.get('recall')):>6}"
                         f"  {_num(row.get('f1')):>6}  {row.get('support', 0):>7}")
    if "binary" in results:
        b = results["binary"]
        lines += ["", f"binary (collapsed at level >= {b.get('threshold')}): "
                      f"accuracy {_num(b.get('accuracy'))}  weighted_f1 {_num(b.get('weighted_f1'))}  "
                      f"high-risk precision {_num(b.get('precision'))} recall {_num(b.get('recall'))} "
                      f"f1 {_num(b.get('f1'))}"]
    if out_dir is not None:
        out = Path(out_dir)
        lines += ["", f"wrote {out / RESULTS_FILE} and {out / CONFUSION_FILE}"]
    return "\n".join(lines)
