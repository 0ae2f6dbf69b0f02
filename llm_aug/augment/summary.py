"""What the augmentation report shows: counts before/after, rejections per filter,
diversity, samples. The pages themselves are rendered by :mod:`llm_aug.eval.render`
(``augment.md.jinja`` / ``augment.html.jinja``) from :func:`report_data`.

Diversity metrics (all over characters, whitespace ignored):

* ``distinct_1`` / ``distinct_2``: unique character uni/bigrams over all of them; low
  means the generator keeps reusing the same wording.
* ``self_similarity``: mean char 3-gram Jaccard over all pairs of a sample of one
  level's posts (<= ``sample`` posts); high means near-copies of each other.
* ``max_sim_real``: mean over posts (a seeded sample of <= 500) of the highest Jaccard
  with any real post; high means paraphrases of the training set rather than new posts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from llm_aug.augment.rows import SynthRow
from llm_aug.augment.textsim import ShingleIndex


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


def mean_max_similarity(texts: Sequence[str], reference: Sequence[str] | ShingleIndex, sample: int = 500,
                        seed: int = 0) -> float:
    """Mean over ``texts`` of the highest char 3-gram Jaccard with any reference text.

    Over a seeded sample of at most ``sample`` texts: every text is compared with every
    reference post, so all of 100,000 posts against a large training file would cost far
    more than the estimate is worth. ``reference`` may be a prebuilt index (built once
    for all groups of a report).
    """
    if not texts or not len(reference):
        return 0.0
    texts = list(texts)
    if len(texts) > sample:
        texts = random.Random(seed).sample(texts, sample)
    index = reference if isinstance(reference, ShingleIndex) else ShingleIndex(reference)
    return float(index.best(texts).jaccard.mean())


def diversity(texts_by_level: Mapping[int, Sequence[str]], reference: Sequence[str] | None = None,
              *, sample: int = 200, seed: int = 0) -> dict[str, DiversityStats]:
    """Stats per level (keys ``"0"``, ``"1"``...) and over all levels (``"all"``)."""
    groups = {str(k): list(v) for k, v in sorted(texts_by_level.items())}
    groups["all"] = [t for v in texts_by_level.values() for t in v]
    index = ShingleIndex(reference) if reference is not None and any(groups.values()) else None
    out = {}
    for key, texts in groups.items():
        out[key] = DiversityStats(
            n=len(texts), distinct_1=distinct_n(texts, 1), distinct_2=distinct_n(texts, 2),
            self_similarity=mean_pairwise_similarity(texts, sample, seed),
            max_sim_real=None if reference is None else
            mean_max_similarity(texts, index if index is not None else [], seed=seed))
    return out


def pick_samples(rows: Sequence[SynthRow], per_level: int = 3, seed: int = 0) -> list[SynthRow]:
    """Up to ``per_level`` seeded random rows of each level, by level."""
    by_level: dict[int, list[SynthRow]] = {}
    for r in rows:
        by_level.setdefault(r.label, []).append(r)
    return [by_level[lv][i] for lv, i in _sample_positions({lv: len(v) for lv, v in by_level.items()},
                                                             per_level, seed)]


def sample_rows(by_level: Mapping[int, Sequence[tuple[str, ...]]], per_level: int = 3,
                seed: int = 0) -> list[SynthRow]:
    """:func:`pick_samples` from per-level (text, method[, source id]) tuples: the same picks, as display rows.

    The source id (a rewrite's source post, or an LLM post's first exemplar) lands in
    ``source_ids`` so the report can show what each sample was made from.
    """
    return [_display_row(lv, i, *by_level[lv][i])
            for lv, i in _sample_positions({lv: len(v) for lv, v in by_level.items()}, per_level, seed)]


def _display_row(level: int, i: int, text: str, method: str, source: str = "") -> SynthRow:
    return SynthRow(id=f"sample-{level}-{i}", text=text, label=level, method=method,
                    source_ids=[source] if source else [])


def _sample_positions(sizes: Mapping[int, int], per_level: int, seed: int) -> list[tuple[int, int]]:
    """(level, position) picks: ``random.sample`` chooses by position, so this is the rows' pick."""
    rng = random.Random(seed)
    return [(lv, i) for lv in sorted(sizes) if sizes[lv] for i in rng.sample(range(sizes[lv]), min(per_level, sizes[lv]))]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def report_tables(before: Mapping[int, int], after: Mapping[int, int], rejections: Mapping[str, int],
                  stats: Mapping[str, DiversityStats]) -> list[dict[str, Any]]:
    """The report's tables as ``{"title", "table": (header, rows)}`` with string cells."""
    levels = sorted(set(before) | set(after))
    counts = [[str(lv), str(before.get(lv, 0)), str(after.get(lv, 0) - before.get(lv, 0)),
               str(after.get(lv, 0))] for lv in levels]
    counts.append(["total", str(sum(before.values())), str(sum(after.values()) - sum(before.values())),
                   str(sum(after.values()))])
    rej = [[k, str(v)] for k, v in rejections.items()] + [["total", str(sum(rejections.values()))]]
    dv = [[k, str(d.n), _fmt(d.distinct_1), _fmt(d.distinct_2), _fmt(d.self_similarity), _fmt(d.max_sim_real)]
          for k, d in stats.items()]
    return [
        {"title": "Posts per level", "table": (["level", "before", "added", "after"], counts)},
        {"title": "Rejected synthetic posts per filter", "table": (["filter", "rejected"], rej)},
        {"title": "Diversity of accepted synthetic posts",
         "table": (["level", "n", "distinct-1", "distinct-2", "self-similarity", "max-sim to real"], dv)},
    ]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def sample_item(row: SynthRow, sources: Mapping[str, str] | None = None, limit: int = 200) -> dict[str, str]:
    """One sample for the report: ``tag`` (level, method, rejection), ``text`` (cut at ``limit``),
    and what it was made from: ``source`` (that post's text, "" when unknown) and ``source_kind``.

    ``sources`` maps training ids to texts. A rewrite (synonym, EDA, back-translation)
    names its source post; an LLM post names the exemplars its prompt showed, the first
    of which is shown.
    """
    tag = f"L{row.label} · {row.method}" + (f" · rejected: {row.reject_reason}" if row.reject_reason else "")
    ids = row.source_ids or row.exemplar_ids
    source = (sources or {}).get(ids[0], "") if ids else ""
    kind = "" if not source else "first exemplar shown to the model" if row.method == "llm" else "source post"
    return {"tag": tag, "text": _cut(row.text, limit), "source": _cut(source, limit), "source_kind": kind}


def report_data(before_counts: Mapping[int, int], after_counts: Mapping[int, int],
                rejections: Mapping[str, int], stats: Mapping[str, DiversityStats],
                samples: Sequence[SynthRow], *, title: str = "Augmentation report",
                status: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None,
                links: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """What ``augment.md.jinja`` and ``augment.html.jinja`` show.

    ``status`` is ``{"short": [one line per level left short], "rounds": int, "n_candidates": int,
    "protected": [lines on training posts that copy a protected post], "notes": [other lines]}``
    for a finished run, or None to leave the status lines out. ``sources`` (training id ->
    text) puts each sample beside the post it came from; ``links`` are (text, relative
    href) pairs to related pages.
    """
    return {"title": title, "status": None if status is None else dict(status),
            "tables": report_tables(before_counts, after_counts, rejections, stats),
            "samples": [sample_item(r, sources) for r in samples],
            "links": [{"text": t, "href": h} for t, h in links]}
