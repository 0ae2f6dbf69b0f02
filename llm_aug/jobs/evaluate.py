"""Python API behind ``llm-aug evaluate``: load gold, score, write results.json and a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.core.manifest import write_manifest
from llm_aug.eval.metrics import METRICS
from llm_aug.eval.results import score_predictions, write_results

def infer_task(gold_path: Path, load_kwargs: dict[str, Any]) -> str:
    """``binary`` when every gold label is 0 or 1, else ``fine``."""
    labels = set(load_dataset(gold_path, None, **load_kwargs).labels)
    return "binary" if labels <= {0, 1} else "fine"


def evaluate_predictions(pred_path: str | Path, gold_path: str | Path, *, task: Task | str | None = None,
                         binary_gold: str | Path | None = None, threshold: int | None = None,
                         out_dir: str | Path | None = None, n_boot: int = 1000,
                         load_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score ``pred_path`` against ``gold_path``; write results.json, confusion.png and a manifest."""
    kwargs = load_kwargs or {}
    scheme: LabelScheme = scheme_for_task(task or infer_task(gold_path, kwargs))
    gold = load_dataset(gold_path, scheme, **kwargs)
    bgold = load_dataset(binary_gold, scheme_for_task("binary"), **kwargs) if binary_gold else None
    results = score_predictions(pred_path, gold, scheme, binary_gold=bgold, threshold=threshold, n_boot=n_boot)
    out = Path(out_dir) if out_dir else Path(pred_path).parent
    write_results(out, results, scheme)
    files = [gold_path, pred_path] + ([binary_gold] if binary_gold else [])
    write_manifest(out, "evaluate", data_files=files, name="results.manifest.json",
                   config={"task": scheme.task, "threshold": threshold, "n_boot": n_boot})
    return results


def format_results(results: dict[str, Any]) -> str:
    """A short human-readable table of the headline metrics with their CIs."""
    lines = [f"n={results['n']}  invalid_rate={results.get('invalid_rate', 0):.3f}"]
    for key in METRICS:
        if key not in results:
            continue
        lo, hi = results.get("ci", {}).get(key, (None, None))
        ci = f"  [{lo:.4f}, {hi:.4f}]" if lo is not None else ""
        lines.append(f"{key:<12} {results[key]:.4f}{ci}")
    if "binary" in results:
        b = results["binary"]
        lines.append(f"binary (collapsed) weighted_f1 {b.get('weighted_f1', float('nan')):.4f}")
    return "\n".join(lines)
