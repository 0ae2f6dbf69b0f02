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
from llm_aug.eval.results import RELIABILITY_FILE, score_predictions, write_results
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


class CalibrationScores(ResultPart):
    """Calibration of the rows' ``proba`` (:func:`llm_aug.eval.calibration.calibration_metrics`)."""

    omit_unset: ClassVar[frozenset[str]] = frozenset({"ece_if_calibrated"})
    ece: float = Field(description="top-label ECE, equal-mass bins")
    brier: float
    log_loss: float
    n: int = Field(description="rows with proba scored")
    n_bins: int
    n_boot: int
    interval: str
    ci: dict[str, list[float]] = Field(description="95% bootstrap intervals of ece, brier, log_loss")
    ece_if_calibrated: list[float] | None = Field(None, description="the ECE range of a perfectly calibrated "
                                                  "model with these confidences (absent with n_boot=0)")
    n_without_proba: int = Field(description="rows left out: no proba (e.g. a failed LLM answer)")
    curve: list[dict[str, float | int]] = Field(description="reliability bins: lo, hi, confidence, accuracy, count")


class CoverageScores(ResultPart):
    """Coverage of the rows' ``levels`` (:func:`llm_aug.eval.conformal.coverage_report`)."""

    coverage: float | None
    mean_size: float | None
    n: int
    per_level: dict[str, dict[str, float | int | None]] = Field(description="per gold level: coverage, n, mean_size")
    size_histogram: dict[str, int]
    n_without_levels: int


class AlertScores(ResultPart):
    """One recall target's alerts scored against gold (rows without alerts count as flagged)."""

    name: str = Field(description="the alert's name, e.g. recall>=0.9")
    recall: float | None
    precision: float | None
    alert_rate_per_1000: float | None
    flagged: int
    missed: int = Field(description="high-risk posts not flagged")
    n: int
    n_pos: int = Field(description="high-risk gold posts")
    unscored: int = Field(description="rows without alerts, counted as flagged")


class ScoredItems(ResultPart):
    """The aligned items, for paired tests between runs."""

    ids: list[str]
    gold: list[int]
    pred: list[int | None] = Field(description="None where the prediction is not a valid label")


class EvaluateResult(JobResult):
    """What :func:`evaluate_predictions` scored; its JSON is what ``evaluate --json`` prints.

    ``results.json`` holds the same keys (and ``system``). The ordinal metrics (``mae``,
    ``qwk``, ``within1``, ``ordinal_n``) are present for an ordinal scheme (fine) only,
    ``binary`` only with a binary gold file, ``calibration`` / ``conformal`` /
    ``operating_points`` only when rows carry ``proba`` / ``levels`` / ``alerts``.
    """

    omit_unset: ClassVar[frozenset[str]] = frozenset({"mae", "qwk", "within1", "ordinal_n", "binary", "calibration",
                                                      "conformal", "operating_points"})
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
    calibration: CalibrationScores | None = Field(None, description="when rows carry proba")
    conformal: CoverageScores | None = Field(None, description="when rows carry levels")
    operating_points: list[AlertScores] | None = Field(None, description="when rows carry alerts")
    items: ScoredItems


def infer_task(gold_path: Path, load_kwargs: dict[str, Any]) -> str:
    """``binary`` when every gold label is 0 or 1, else ``fine``."""
    labels = set(load_dataset(gold_path, None, **load_kwargs).labels)
    return "binary" if labels <= {0, 1} else "fine"


def evaluate_predictions(pred_path: str | Path, gold_path: str | Path, *, task: Task | str | None = None,
                         binary_gold: str | Path | None = None, threshold: int | None = None,
                         out_dir: str | Path | None = None, n_boot: int = 1000,
                         load_kwargs: dict[str, Any] | None = None) -> EvaluateResult:
    """Score ``pred_path`` against ``gold_path``; write results.json, confusion.png and a manifest.

    Rows with ``proba`` also give calibration metrics and ``reliability.png``; rows with
    ``levels`` the sets' coverage; rows with ``alerts`` the operating points.
    """
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
    present, the calibration / level-set / alert blocks when present and, given
    ``out_dir``, a last line naming results.json and the figures.
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
    lines += _per_class_lines(results.get("per_class") or {})
    if "binary" in results:
        lines += ["", _binary_line(results["binary"])]
    lines += probability_lines(results)
    if out_dir is not None:
        out = Path(out_dir)
        names = [RESULTS_FILE, CONFUSION_FILE] + ([RELIABILITY_FILE] if results.get("calibration") else [])
        files = [str(out / name) for name in names]
        lines += ["", f"wrote {', '.join(files[:-1])} and {files[-1]}"]
    return "\n".join(lines)


def _per_class_lines(per_class: Mapping[str, Any]) -> list[str]:
    """The per-class table (precision, recall, F1, support) after a blank line; none without classes."""
    if not per_class:
        return []
    width = max(len(f"{label} {row.get('name') or ''}".strip()) for label, row in per_class.items())
    width = max(width, len("label"))
    lines = ["", f"{'label':<{width}}  precision  recall      f1  support"]
    for label, row in per_class.items():
        name = f"{label} {row.get('name') or ''}".strip()
        lines.append(f"{name:<{width}}  {_num(row.get('precision')):>9}  {_num(row.get('recall')):>6}"
                     f"  {_num(row.get('f1')):>6}  {row.get('support', 0):>7}")
    return lines


def _binary_line(b: Mapping[str, Any]) -> str:
    """The collapsed binary scores on one line."""
    return (f"binary (collapsed at level >= {b.get('threshold')}): "
            f"accuracy {_num(b.get('accuracy'))}  weighted_f1 {_num(b.get('weighted_f1'))}  "
            f"high-risk precision {_num(b.get('precision'))} recall {_num(b.get('recall'))} "
            f"f1 {_num(b.get('f1'))}")


def _ci(block: Mapping[str, Any], key: str) -> str:
    lo, hi = (block.get("ci") or {}).get(key) or (None, None)
    return f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""


def probability_lines(results: Mapping[str, Any]) -> list[str]:
    """Short lines for the calibration, level-set coverage and operating-point blocks (none: [])."""
    lines = []
    cal = results.get("calibration")
    if cal:
        left = f", {cal['n_without_proba']} without" if cal.get("n_without_proba") else ""
        lines += ["", f"calibration (n={cal['n']} with proba{left}, {cal['n_bins']} equal-mass bins):",
                  f"  ECE {cal['ece']:.3f}{_ci(cal, 'ece')}  Brier {cal['brier']:.3f}{_ci(cal, 'brier')}  "
                  f"log loss {cal['log_loss']:.3f}{_ci(cal, 'log_loss')}"]
        if cal.get("ece_if_calibrated"):
            lo, hi = cal["ece_if_calibrated"]
            lines.append(f"  a calibrated model at this n shows ECE {lo:.3f}-{hi:.3f}")
    sets = results.get("conformal")
    if sets:
        left = f", {sets['n_without_levels']} without" if sets.get("n_without_levels") else ""
        lines += ["", f"level sets (n={sets['n']}{left}): coverage {_num(sets.get('coverage'))}  "
                      f"mean size {_num(sets.get('mean_size'))}"]
        per = [f"{lv}:{row['coverage']:.2f}" for lv, row in sets.get("per_level", {}).items()
               if row.get("coverage") is not None]
        lines.append("  coverage per level " + " ".join(per))
    ops = results.get("operating_points") or []
    if ops:
        lines += ["", "operating points (alerts; rows without alerts count as flagged):"]
    for op in ops:
        rate = op.get("alert_rate_per_1000")
        lines.append(f"  {op['name']}: recall {_num(op.get('recall'))}  precision {_num(op.get('precision'))}  "
                     f"alerts/1000 {'n/a' if rate is None else f'{rate:.0f}'}  missed {op['missed']}/{op['n_pos']}")
    return lines
