"""Score a predictions file against gold data and write ``results.json`` + a confusion plot.

``results.json`` holds the flat metrics of :func:`llm_aug.eval.metrics.compute_metrics`
plus provenance (``task``, ``scheme``, ``predictions``, ``gold``...), bootstrap
intervals under ``ci`` and the per-item ``items`` (ids, gold, pred) that
:func:`llm_aug.eval.report.compare_runs` uses for paired tests. Predictions that carry
``proba``, ``levels`` or ``alerts`` add the ``calibration``, ``conformal`` and
``operating_points`` blocks (:mod:`llm_aug.eval.probability_scores`) and, with
``calibration``, a reliability diagram beside the confusion matrix.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from llm_aug.core.errors import UserError
from llm_aug.core.files import CONFUSION_FILE, RESULTS_FILE, atomic_write_text
from llm_aug.data.io import Dataset
from llm_aug.data.schemes import LabelScheme
from llm_aug.eval.bootstrap import bootstrap_ci
from llm_aug.eval.metrics import clean_preds, collapse_binary, compute_metrics, headline_metrics
from llm_aug.eval.plots import plot_confusion, plot_reliability
from llm_aug.eval.predictions import _examples, align, read_predictions
from llm_aug.eval.probability_scores import alerts_block, calibration_block, conformal_block

logger = logging.getLogger(__name__)

ALPHA = 0.05
RELIABILITY_FILE = "reliability.png"
_BINARY_CI = ("accuracy", "weighted_f1", "macro_f1")


def _binary_labels(binary_gold: Dataset, ids: list[str]) -> list[int]:
    """Binary gold labels for ``ids`` (matched by id)."""
    by_id = {r.id: r.label for r in binary_gold.rows}
    name = str(binary_gold.path) if binary_gold.path is not None else "binary gold"
    missing = [i for i in ids if by_id.get(i) is None]
    if missing:
        raise UserError(
            f"{name}: {len(missing)} of {len(ids)} items have no binary gold label ({_examples(missing)})"
        )
    return [int(by_id[i]) for i in ids]


def _cis(gold: list, pred: list, metrics: list[str], labels: list[int], n_boot: int, seed: int) -> dict:
    out = {}
    for m in metrics:
        lo, hi = bootstrap_ci(gold, pred, m, n_boot=n_boot, seed=seed, alpha=ALPHA, labels=labels)
        out[m] = [lo, hi]
    return out


def _provenance(
    pred_path: str | Path, gold: Dataset, scheme: LabelScheme, binary_gold: Dataset | None,
    n_boot: int, seed: int,
) -> dict:
    return {
        "task": scheme.task,
        "scheme": scheme.name,
        "predictions": str(pred_path),
        "gold": str(gold.path) if gold.path is not None else None,
        "gold_sha256": gold.meta.get("sha256"),
        "binary_gold": str(binary_gold.path) if binary_gold is not None and binary_gold.path else None,
        "n_boot": n_boot,
        "seed": seed,
        "alpha": ALPHA,
    }


def score_predictions(
    pred_path: str | Path,
    gold: Dataset,
    scheme: LabelScheme,
    *,
    binary_gold: Dataset | None = None,
    threshold: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Score ``pred_path`` against ``gold``: metrics, bootstrap CIs and provenance.

    ``binary_gold`` (matched by id) adds a ``binary`` block scored on predictions
    collapsed at ``threshold`` (default ``scheme.binary_threshold``). ``n_boot=0``
    skips the confidence intervals (``ci`` is then empty).
    """
    if n_boot < 0:
        raise UserError(f"n_boot must be >= 0, got {n_boot}")
    preds = read_predictions(pred_path)
    gold_l, raw_pred, ids = align(preds, gold, source=pred_path)
    pred_l = clean_preds(raw_pred, scheme.labels)
    bgold = _binary_labels(binary_gold, ids) if binary_gold is not None else None
    metrics = compute_metrics(gold_l, pred_l, scheme, binary_gold=bgold, threshold=threshold)
    results = {**_provenance(pred_path, gold, scheme, binary_gold, n_boot, seed), **metrics}
    results["ci"] = {}
    if n_boot:
        results["ci"] = _cis(gold_l, pred_l, headline_metrics(scheme), scheme.labels, n_boot, seed)
    if bgold is not None and n_boot:
        collapsed = collapse_binary(pred_l, results["binary"]["threshold"])
        results["binary"]["ci"] = _cis(bgold, collapsed, list(_BINARY_CI), [0, 1], n_boot, seed)
    results.update(_probability_blocks(preds, ids, gold_l, scheme, n_boot, seed, pred_path))
    results["items"] = {"ids": ids, "gold": gold_l, "pred": pred_l}
    logger.info("%s: n=%d accuracy=%.4f weighted_f1=%.4f", pred_path, results["n"],
                results["accuracy"], results["weighted_f1"])
    return results


def _probability_blocks(preds: list[dict], ids: list[str], gold: list[int], scheme: LabelScheme, n_boot: int,
                        seed: int, source: str | Path) -> dict:
    """The blocks of the fields the rows carry (none of them: an empty dict, results as before)."""
    records = {str(p["id"]): p for p in preds}
    blocks = {"calibration": calibration_block(records, ids, gold, scheme.labels, n_boot=n_boot, seed=seed,
                                               source=source),
              "conformal": conformal_block(records, ids, gold, scheme.labels, source=source),
              "operating_points": alerts_block(records, ids, gold, scheme)}
    return {k: v for k, v in blocks.items() if v is not None}


def _clean(obj: object) -> object:
    """Non-finite floats -> None (JSON has no NaN); tuples -> lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _dumps(obj: object, indent: int = 0) -> str:
    """Indented JSON that keeps lists of scalars on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict) and obj:
        body = ",\n".join(
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, indent + 2)}" for k, v in obj.items()
        )
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_results(out_dir: str | Path, results: dict, scheme: LabelScheme, name: str | None = None) -> Path:
    """Write ``results.json`` and ``confusion.png`` into ``out_dir``; return the JSON path.

    ``name`` is stored as ``results['system']`` (the system name in comparisons). With a
    ``calibration`` block, ``reliability.png`` (its reliability diagram) is written too.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = dict(results)
    if name is not None:
        data["system"] = name
    path = out_dir / RESULTS_FILE
    atomic_write_text(path, _dumps(_clean(data)) + "\n")
    system = data.get("system") or out_dir.name
    invalid = [c.get("invalid", 0) for c in data.get("per_class", {}).values()] or None
    plot_confusion(data["confusion"], scheme, out_dir / CONFUSION_FILE,
                   f"{system}: {scheme.name} (n={data.get('n')})", invalid=invalid)
    curve = (data.get("calibration") or {}).get("curve")
    if curve:
        plot_reliability({system: curve}, out_dir / RELIABILITY_FILE, f"{system}: reliability ({scheme.name})")
    logger.info("wrote %s", path)
    return path
