"""Augmentation report: counts before/after, rejections per filter, diversity, samples.

Diversity metrics (all over characters, whitespace ignored):

* ``distinct_1`` / ``distinct_2``: unique character uni/bigrams over all of them; low
  means the generator keeps reusing the same wording.
* ``self_similarity``: mean char 3-gram Jaccard over all pairs of a sample of one
  level's posts (<= ``sample`` posts); high means near-copies of each other.
* ``max_sim_real``: mean over posts of the highest Jaccard with any real post; high
  means paraphrases of the training set rather than new posts.
"""

from __future__ import annotations

import html
import random
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from llm_aug.augment.rows import SynthRow
from llm_aug.augment.textsim import ShingleIndex

Table = tuple[str, list[str], list[list[str]]]  # (title, header, rows)


class DiversityStats(BaseModel):
    """Diversity of one group of posts (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    n: int
    distinct_1: float
    distinct_2: float
    self_similarity: float
    max_sim_real: float | None = None


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique character n-grams / all character n-grams over ``texts`` (0 when none)."""
    grams: Counter[str] = Counter()
    for t in texts:
        s = "".join(t.split())
        grams.update(s[i : i + n] for i in range(len(s) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def mean_pairwise_similarity(texts: Sequence[str], sample: int = 200, seed: int = 0) -> float:
    """Mean char 3-gram Jaccard over all pairs of (a seeded sample of) ``texts``."""
    texts = list(texts)
    if len(texts) > sample:
        texts = random.Random(seed).sample(texts, sample)
    if len(texts) < 2:
        return 0.0
    index = ShingleIndex(texts)
    total = 0.0
    for start, sim in index.self_jaccard_chunks():
        rows = start + np.arange(sim.shape[0])
        total += float(sim[np.arange(len(index))[None, :] > rows[:, None]].sum())
    return total / (len(texts) * (len(texts) - 1) / 2)


def mean_max_similarity(texts: Sequence[str], reference: Sequence[str]) -> float:
    """Mean over ``texts`` of the highest char 3-gram Jaccard with any reference text."""
    if not texts or not reference:
        return 0.0
    return float(ShingleIndex(reference).best(list(texts)).jaccard.mean())


def diversity(texts_by_level: Mapping[int, Sequence[str]], reference: Sequence[str] | None = None,
              *, sample: int = 200, seed: int = 0) -> dict[str, DiversityStats]:
    """Stats per level (keys ``"0"``, ``"1"``...) and over all levels (``"all"``)."""
    groups = {str(k): list(v) for k, v in sorted(texts_by_level.items())}
    groups["all"] = [t for v in texts_by_level.values() for t in v]
    out = {}
    for key, texts in groups.items():
        out[key] = DiversityStats(
            n=len(texts), distinct_1=distinct_n(texts, 1), distinct_2=distinct_n(texts, 2),
            self_similarity=mean_pairwise_similarity(texts, sample, seed),
            max_sim_real=mean_max_similarity(texts, reference) if reference is not None else None)
    return out


def pick_samples(rows: Sequence[SynthRow], per_level: int = 3, seed: int = 0) -> list[SynthRow]:
    """Up to ``per_level`` seeded random rows of each level, by level."""
    by_level: dict[int, list[SynthRow]] = {}
    for r in rows:
        by_level.setdefault(r.label, []).append(r)
    rng = random.Random(seed)
    return [r for lv in sorted(by_level) for r in rng.sample(by_level[lv], min(per_level, len(by_level[lv])))]


def _tables(before: Mapping[int, int], after: Mapping[int, int], rejections: Mapping[str, int],
            div: Mapping[str, DiversityStats]) -> list[Table]:
    levels = sorted(set(before) | set(after))
    counts = [[str(lv), str(before.get(lv, 0)), str(after.get(lv, 0) - before.get(lv, 0)),
               str(after.get(lv, 0))] for lv in levels]
    counts.append(["total", str(sum(before.values())), str(sum(after.values()) - sum(before.values())),
                   str(sum(after.values()))])
    rej = [[k, str(v)] for k, v in rejections.items()] + [["total", str(sum(rejections.values()))]]
    fmt = lambda x: "-" if x is None else f"{x:.3f}"
    dv = [[k, str(d.n), fmt(d.distinct_1), fmt(d.distinct_2), fmt(d.self_similarity), fmt(d.max_sim_real)]
          for k, d in div.items()]
    return [
        ("Posts per level", ["level", "before", "added", "after"], counts),
        ("Rejected synthetic posts per filter", ["filter", "rejected"], rej),
        ("Diversity of accepted synthetic posts",
         ["level", "n", "distinct-1", "distinct-2", "self-similarity", "max-sim to real"], dv),
    ]


def _sample_line(r: SynthRow, limit: int = 200) -> tuple[str, str]:
    tag = f"L{r.label} · {r.method}" + (f" · rejected: {r.reject_reason}" if r.reject_reason else "")
    return tag, r.text if len(r.text) <= limit else r.text[:limit] + "…"


def render_report(before_counts: Mapping[int, int], after_counts: Mapping[int, int],
                  rejections: Mapping[str, int], diversity: Mapping[str, DiversityStats],
                  samples: Sequence[SynthRow], title: str = "Augmentation report") -> str:
    """The report as Markdown."""
    cell = lambda s: s.replace("|", "\\|")
    out = [f"# {title}", ""]
    for name, header, rows in _tables(before_counts, after_counts, rejections, diversity):
        out += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        out.append("")
    out += ["## Samples", ""]
    out += [f"- **{cell(tag)}**: {text}" for tag, text in map(_sample_line, samples)] or ["(none)"]
    return "\n".join(out) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:0 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
        "li{margin:.3rem 0}.tag{color:#555;font-size:.9em}")


def render_html(before_counts: Mapping[int, int], after_counts: Mapping[int, int],
                rejections: Mapping[str, int], diversity: Mapping[str, DiversityStats],
                samples: Sequence[SynthRow], title: str = "Augmentation report") -> str:
    """The same report as one self-contained HTML page (inline CSS, no scripts)."""
    e = html.escape
    head = (f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>")
    out = [head]
    for name, header, rows in _tables(before_counts, after_counts, rejections, diversity):
        out.append(f"<h2>{e(name)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</table>")
    out.append("<h2>Samples</h2><ul>")
    out += [f"<li><span class='tag'>{e(tag)}</span><br>{e(text)}</li>" for tag, text in map(_sample_line, samples)]
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"
