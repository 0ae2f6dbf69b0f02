"""Figures for evaluation reports (PNG, rendered off-screen with Agg; no pyplot state).

Level labels use English names. System names may be Chinese: figures fall back to a
CJK font where one is installed (e.g. Debian's fonts-noto-cjk), else glyphs are boxes.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Callable, TypeVar

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from llm_aug.core.files import atomic_write_binary
from llm_aug.data.schemes import LabelScheme

logger = logging.getLogger(__name__)

Target = str | Path | IO[bytes]
F = TypeVar("F", bound=Callable[..., Any])
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "PingFang SC", "Microsoft YaHei")
_CJK_FILE_HINTS = ("cjk", "wqy", "sourcehan", "pingfang", "msyh")


@functools.lru_cache(maxsize=1)
def cjk_fonts() -> tuple[str, ...]:
    """Installed CJK font families matplotlib can use, best first (may be empty)."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    if not names.intersection(CJK_FONTS):
        # matplotlib's font cache may predate a CJK font installed later: add those files.
        for path in font_manager.findSystemFonts():
            if any(hint in path.lower() for hint in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    logger.debug("cannot load font %s", path)
        names = {f.name for f in font_manager.fontManager.ttflist}
    return tuple(n for n in CJK_FONTS if n in names)


def _with_cjk(fn: F) -> F:
    """Draw with DejaVu Sans first and a CJK font as per-glyph fallback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Concrete family names: matplotlib falls back glyph by glyph only along such a list.
        with matplotlib.rc_context({"font.family": ["DejaVu Sans", *cjk_fonts()]}):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _save(fig: Figure, path: Target) -> None:
    FigureCanvasAgg(fig)
    if isinstance(path, (str, Path)):  # whole or not at all, like every output
        atomic_write_binary(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=110))
    else:
        fig.savefig(path, format="png", dpi=110)


@_with_cjk
def plot_confusion(
    confusion: Sequence[Sequence[int]],
    scheme: LabelScheme,
    path: Target,
    title: str,
    *,
    invalid: Sequence[int] | None = None,
    vmax: float | None = None,
    compact: bool = False,
) -> None:
    """Heatmap of counts (rows = gold, columns = predicted) over ``scheme.labels``.

    ``invalid`` (per gold label, the number of unparseable predictions) adds an
    'invalid' column when any is non-zero. ``vmax`` fixes the top of the colour scale
    (pass the same value to several matrices to compare them by eye); ``compact`` draws
    a smaller figure for a grid of matrices, predicted levels labelled by number only.
    """
    mat = np.asarray(confusion, dtype=int)
    names = [f"{lab} {scheme.name_of(lab)}" for lab in scheme.labels]
    cols = [str(lab) for lab in scheme.labels] if compact else list(names)
    if invalid is not None and any(invalid):
        mat = np.column_stack([mat, np.asarray(invalid, dtype=int)])
        cols.append("inv." if compact else "invalid")
    top = float(vmax) if vmax is not None and vmax > 0 else (float(mat.max()) if mat.size and mat.max() else 1.0)
    if compact:
        side = 2.2 + 0.22 * len(cols)
        fig, font = Figure(figsize=(side + 1.6, side)), 7
    else:
        size = 2.5 + 0.55 * len(cols)
        fig, font = Figure(figsize=(size + 1.5, size)), 8
    ax = fig.add_subplot()
    image = ax.imshow(mat, cmap="Blues", aspect="auto", vmin=0, vmax=top)
    for (i, j), count in np.ndenumerate(mat):
        if count:
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=font)
    ax.set_xticks(range(len(cols)), cols, rotation=0 if compact else 45, ha="center" if compact else "right",
                  fontsize=font)
    ax.set_yticks(range(len(names)), names, fontsize=font)
    ax.set_xlabel("predicted", fontsize=font + 1)
    ax.set_ylabel("gold", fontsize=font + 1)
    ax.set_title(title, fontsize=font + 2)
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


@_with_cjk
def plot_metric_bars(
    systems: Sequence[str],
    values: Sequence[float | None],
    cis: Sequence[Sequence[float] | None],
    path: Target,
    metric: str,
    *,
    subtitle: str | None = None,
) -> None:
    """Bar chart of one metric per system with (lo, hi) confidence-interval error bars.

    ``subtitle`` (e.g. ``TEST split (33 posts)``) goes into the title after the metric.
    """
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
    on = f", {subtitle}" if subtitle else ""
    ax.set_title(f"{metric}{on} (error bars: bootstrap CI)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)



def _curve_label(name: str, curve: Sequence[dict]) -> str:
    counts = [b["count"] for b in curve]
    n = sum(counts)
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in curve) / n if n else float("nan")
    per_bin = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    return f"{name}: ECE {ece:.3f}, n={n}, {len(curve)} bins of {per_bin}"


def _bin_strips(ax: Any, curves: dict[str, Sequence[dict]], colors: Sequence) -> None:
    """One strip per curve: each bin's confidence range as a segment, its count written inside."""
    for i, (name, curve) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        for j, b in enumerate(curve):
            width = max(b["hi"] - b["lo"], 0.003)
            ax.broken_barh([(b["lo"], width)], (i - 0.4, 0.8), facecolors=color, alpha=0.25 + 0.35 * (j % 2),
                           edgecolor="white", linewidth=0.5)
            if width >= 0.035:
                ax.text(b["lo"] + width / 2, i, str(b["count"]), ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(curves)), list(curves), fontsize=7)
    ax.set_ylim(len(curves) - 0.5, -0.5)


@_with_cjk
def plot_reliability(curves: dict[str, Sequence[dict]], path: Target, title: str = "Reliability diagram") -> None:
    """Accuracy against mean confidence per bin, one line per named curve, with the diagonal.

    ``curves`` maps a name (e.g. ``"tfidf-svm"``, ``"tfidf-svm + temperature"``) to the bins
    of :func:`llm_aug.eval.calibration.reliability_curve`. The legend gives each curve's
    ECE, posts and posts per bin; the lower panel shows every bin's confidence range with
    its count written inside (where the segment is wide enough to hold it).
    """
    fig = Figure(figsize=(6.4, 6.2 + 0.3 * len(curves)))
    top, bottom = fig.subplots(2, 1, sharex=True,
                               gridspec_kw={"height_ratios": [4, 0.6 + 0.35 * max(1, len(curves))]})
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    colors = matplotlib.colormaps["tab10"].colors
    for i, (name, curve) in enumerate(curves.items()):
        top.plot([b["confidence"] for b in curve], [b["accuracy"] for b in curve], marker="o", markersize=4,
                 color=colors[i % len(colors)], label=_curve_label(name, curve))
    top.set_xlim(0, 1.01)
    top.set_ylim(0, 1.01)
    top.set_ylabel("accuracy (share of top label correct)")
    top.set_title(title, fontsize=10)
    top.grid(alpha=0.3)
    top.legend(fontsize=7, loc="upper left")
    _bin_strips(bottom, curves, colors)
    bottom.set_xlabel("confidence (top-label probability); equal-mass bins, posts per bin inside")
    fig.tight_layout()
    _save(fig, path)
