"""Report figures: one horizontal bar per system (many systems stay readable)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def metric_bars(labels: Sequence[str], values: Sequence[float | None], cis: Sequence[Sequence[float] | None],
                title: str, reference: tuple[str, float] | None = None) -> bytes:
    """PNG of horizontal bars with CI whiskers; ``reference`` = (label, value) as a dashed line."""
    vals = np.array([math.nan if v is None else float(v) for v in values])
    lo = [v - ci[0] if ci and not math.isnan(v) else 0.0 for v, ci in zip(vals, cis)]
    hi = [ci[1] - v if ci and not math.isnan(v) else 0.0 for v, ci in zip(vals, cis)]
    fig = Figure(figsize=(8.0, 1.2 + 0.32 * len(labels)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]  # first system on top, as in the tables
    ax.barh(y, np.nan_to_num(vals), xerr=[np.maximum(lo, 0), np.maximum(hi, 0)], capsize=3,
            color="#4c78a8", error_kw={"elinewidth": 0.8})
    for yi, v, up in zip(y, vals, hi):
        ax.annotate("n/a" if math.isnan(v) else f"{v:.1f}", (0 if math.isnan(v) else v + max(up, 0), yi),
                    textcoords="offset points", xytext=(4, -3), fontsize=7)
    if reference is not None:
        ax.axvline(reference[1], color="#e45756", linestyle="--", linewidth=1, label=reference[0])
        ax.legend(loc="lower right", fontsize=7)
    ax.set_yticks(y, list(labels), fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
