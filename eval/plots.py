"""Figures for evaluation reports (PNG, rendered off-screen with Agg; no pyplot state).

Labels use English level names: Chinese glyphs may have no font on the host.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from llm_aug.data.schemes import LabelScheme

logger = logging.getLogger(__name__)

Target = str | Path | IO[bytes]


def _save(fig: Figure, path: Target) -> None:
    FigureCanvasAgg(fig)
    if isinstance(path, (str, Path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    scheme: LabelScheme,
    path: Target,
    title: str,
    *,
    invalid: Sequence[int] | None = None,
) -> None:
    """Heatmap of counts (rows = gold, columns = predicted) over ``scheme.labels``.

    ``invalid`` (per gold label, the number of unparseable predictions) adds an
    'invalid' column when any is non-zero.
    """
    mat = np.asarray(confusion, dtype=int)
    names = [f"{lab} {scheme.name_of(lab)}" for lab in scheme.labels]
    cols = list(names)
    if invalid is not None and any(invalid):
        mat = np.column_stack([mat, np.asarray(invalid, dtype=int)])
        cols.append("invalid")
    size = 2.5 + 0.55 * len(cols)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    image = ax.imshow(mat, cmap="Blues", aspect="auto")
    high = mat.max() / 2 if mat.size and mat.max() else 1
    for (i, j), count in np.ndenumerate(mat):
        if count:
            color = "white" if count > high else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    _save(fig, path)


def _errors(values: list[float], cis: Sequence[Sequence[float] | None]) -> np.ndarray:
    """Asymmetric error bar lengths (2, n); 0 where a CI is missing."""
    lower, upper = [], []
    for v, ci in zip(values, cis):
        ok = ci is not None and not math.isnan(v) and all(c is not None and math.isfinite(c) for c in ci)
        lower.append(max(0.0, v - ci[0]) if ok else 0.0)
        upper.append(max(0.0, ci[1] - v) if ok else 0.0)
    return np.array([lower, upper])


def plot_metric_bars(
    systems: Sequence[str],
    values: Sequence[float | None],
    cis: Sequence[Sequence[float] | None],
    path: Target,
    metric: str,
) -> None:
    """Bar chart of one metric per system with (lo, hi) confidence-interval error bars."""
    vals = [float("nan") if v is None else float(v) for v in values]
    fig = Figure(figsize=(max(4.0, 1.2 * len(systems) + 2), 4.2))
    ax = fig.add_subplot()
    x = np.arange(len(systems))
    ax.bar(x, np.nan_to_num(vals), yerr=_errors(vals, cis), capsize=5, color="#4c78a8")
    for xi, v in zip(x, vals):
        label = "n/a" if math.isnan(v) else f"{v:.3f}"
        ax.annotate(label, (xi, 0 if math.isnan(v) else v), textcoords="offset points",
                    xytext=(8, 3), fontsize=8)
    tilt = len(systems) > 3
    ax.set_xticks(x, list(systems), rotation=30 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (error bars: bootstrap CI)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
