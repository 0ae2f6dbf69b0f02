"""Sources of candidate synthetic posts for the augment pipeline.

Each source answers one question per round: "level L needs ``n`` more units: give me
the candidate rows". A unit is one request of ``m`` posts for LLM generation, one
source post for back-translation and rule-based rewriting. Sources are deterministic:
the same round and counts always give the same requests (stable ids, seeded exemplars,
seeded sampling), so a rerun after a crash finds its finished requests in the results
files and the request cache and asks for nothing twice.

* :class:`LLMGenerator`   k exemplars of level L (training file only, a seeded sample per
                          request) -> m new posts.
* :class:`BackTranslator` zh -> en -> zh round trips through the translate prompts.
* :class:`RuleRewriter`   Cilin synonym replacement or EDA on real posts of level L
                          (:mod:`llm_aug.augment.rules`).

The label filter's relabellers are in :mod:`llm_aug.augment.relabel`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from llm_aug.augment.rows import PromptRef, SynthRow, synth_id
from llm_aug.augment.rules import RULE_OPS, RuleRewriter, by_level, rotation
from llm_aug.augment.traditional import back_translate
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import LabelScheme
from llm_aug.llm.runner import Runner, RunSummary
from llm_aug.llm.types import (
    ChatRequest,
    DryRunEstimate,
    SamplingParams,
    estimate_prompt_tokens,
)
from llm_aug.prompting import load_prompt, parse_post_list
from llm_aug.prompting.templates import Prompt

log = logging.getLogger(__name__)

__all__ = ["RULE_OPS", "BackTranslator", "LLMGenerator", "RuleRewriter", "Source", "request_seed"]

Counts = dict[int, int]  # level -> units wanted this round


class Source(Protocol):
    """What the pipeline's round loop needs from a candidate source."""

    unit: int  # posts one unit yields at most
    summaries: list[RunSummary]

    def capacity(self, level: int) -> int | None:
        """Units still available for ``level`` (None: unlimited; may be an upper bound)."""
        ...

    def generate(self, round_no: int, counts: Counts) -> list[SynthRow]:
        """Candidate rows for this round, in request order."""
        ...


def _counts_only(summary: RunSummary) -> RunSummary:
    """The summary without its rows: kept for usage totals, it must not hold every reply of the run."""
    return summary.model_copy(update={"rows": []})


def request_seed(seed: int, request_id: str) -> int:
    """Per-request sampling seed: two requests never share a cache entry or a sample."""
    return int(hashlib.sha1(f"{seed}:{request_id}".encode()).hexdigest()[:8], 16)


class LLMGenerator:
    """k seeded exemplars of a level -> a prompt asking for m new posts of that level."""

    def __init__(self, runner: Runner, prompt: Prompt, scheme: LabelScheme, train: Dataset, *,
                 shots: int, posts_per_request: int, seed: int, temperature: float,
                 top_p: float, max_tokens: int, raw_dir: Path) -> None:
        self.runner, self.prompt, self.scheme = runner, prompt, scheme
        self.unit, self.seed, self.raw_dir = posts_per_request, seed, raw_dir
        self.params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        self.shots = shots
        self.pools = {lv: _distinct(rows) for lv, rows in by_level(train).items()}
        self.ref = PromptRef(name=prompt.name, sha=prompt.sha256)
        self.summaries: list[RunSummary] = []
        self._exemplars: dict[str, list[str]] = {}
        self._level: dict[str, int] = {}

    def capacity(self, level: int) -> int | None:
        return None

    def request(self, level: int, round_no: int, k: int) -> ChatRequest:
        """Request ``k`` of ``level`` in ``round_no``; exemplars vary with the id."""
        rid = f"L{level}-r{round_no}-{k}"
        pool = self.pools.get(level, [])
        # Seeded by the request id; O(k), not O(pool): a level may hold 10,000s of posts.
        exemplars = random.Random(f"{self.seed}|{rid}").sample(pool, min(self.shots, len(pool)))
        self._exemplars[rid], self._level[rid] = [ex.id for ex in exemplars], level
        messages = self.prompt.render(scheme=self.scheme, level=level, examples=exemplars, m=self.unit)
        params = SamplingParams(seed=request_seed(self.seed, rid), **self.params)
        return ChatRequest(id=rid, messages=tuple(messages), params=params)

    def requests(self, round_no: int, counts: Counts) -> list[ChatRequest]:
        """Every request of a round, level by level."""
        return [self.request(lv, round_no, k) for lv, n in sorted(counts.items()) for k in range(n)]

    def dry_run(self, counts: Counts) -> DryRunEstimate:
        """The runner's estimate for a first round of ``counts`` requests per level."""
        return self.runner.dry_run(self.requests(0, counts), self.raw_dir / "generate-r0.jsonl")

    def generate(self, round_no: int, counts: Counts) -> list[SynthRow]:
        reqs = self.requests(round_no, counts)
        if not reqs:
            return []
        summary = self.runner.run(reqs, self.raw_dir / f"generate-r{round_no}.jsonl")
        self.summaries.append(_counts_only(summary))
        seeds = {r.id: r.params.seed for r in reqs}
        rows: list[SynthRow] = []
        for result in summary.rows:
            if not result.ok:
                log.warning("request %s failed: %s", result.id, result.error)
                continue
            level = self._level[result.id]
            # More posts than asked for are kept: they are candidates like the rest.
            posts = [p for text in result.texts for p in parse_post_list(text)]
            rows += [SynthRow(id=synth_id("llm", post, result.id, i), text=post, label=level,
                              method="llm", exemplar_ids=self._exemplars[result.id], prompt=self.ref,
                              model=result.model, seed=seeds[result.id])
                     for i, post in enumerate(posts) if post.strip()]
        return rows

    def prompt_tokens(self) -> int:
        """Estimated prompt tokens of one request (the plan's cost estimate)."""
        level = next(iter(self.pools), self.scheme.labels[0])
        return estimate_prompt_tokens(self.request(level, 0, 0).messages)


def _distinct(rows: list[Row]) -> list[Row]:
    """Rows with a text, the first of each text repeated up to whitespace (the exemplar pool)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        key = " ".join(r.text.split())
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    return out


class BackTranslator:
    """zh -> pivot -> zh through the runner; each unit is one source post's round trip.

    Pass ``j`` over a level's posts samples with seed ``(seed, post, j)``, so a post used
    twice is asked with a different seed and can come back differently worded.
    """

    unit = 1

    def __init__(self, runner: Runner, train: Dataset, *, seed: int, temperature: float,
                 max_tokens: int, raw_dir: Path, pivot: str = "en") -> None:
        self.runner, self.seed, self.raw_dir, self.pivot = runner, seed, raw_dir, pivot
        self.temperature, self.max_tokens = temperature, max_tokens
        self.pools = {lv: rotation(rows, seed, lv) for lv, rows in by_level(train).items()}
        self.prompts = {f"zh-{pivot}": load_prompt(f"translate/zh_{pivot}"),
                        f"{pivot}-zh": load_prompt(f"translate/{pivot}_zh")}
        blob = "+".join(p.sha256 for p in self.prompts.values())
        self.ref = PromptRef(name="+".join(p.name for p in self.prompts.values()),
                             sha=hashlib.sha256(blob.encode()).hexdigest())
        self.summaries: list[RunSummary] = []
        self._cursor: dict[int, int] = {}

    def capacity(self, level: int) -> int | None:
        return None if self.pools.get(level) else 0

    def _picks(self, counts: Counts) -> list[tuple[str, Row]]:
        """(unit id, source row) for this round: the next posts of each level's rotation."""
        picks = []
        for lv, n in sorted(counts.items()):
            pool, start = self.pools[lv], self._cursor.get(lv, 0)
            picks += [(f"L{lv}-u{i}", pool[i % len(pool)]) for i in range(start, start + n)]
            self._cursor[lv] = start + n
        return picks

    def requests(self, unit_ids: Sequence[str], texts: Sequence[str], direction: str) -> list[ChatRequest]:
        """One translate request per non-empty text."""
        prompt = self.prompts[direction]
        return [ChatRequest(id=f"{uid}-{direction}", messages=tuple(prompt.render(post=text)),
                            params=SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens,
                                                  seed=request_seed(self.seed, uid)))
                for uid, text in zip(unit_ids, texts) if text.strip()]

    def dry_run(self, counts: Counts) -> DryRunEstimate:
        """The runner's estimate for the first leg (zh -> pivot) of a first round."""
        picks = self._picks(counts)
        self._cursor.clear()
        direction = f"zh-{self.pivot}"
        return self.runner.dry_run(self.requests([u for u, _ in picks], [r.text for _, r in picks], direction),
                                   self.raw_dir / f"backtranslate-r0-{direction}.jsonl")

    def generate(self, round_no: int, counts: Counts) -> list[SynthRow]:
        picks = self._picks(counts)
        unit_ids = [uid for uid, _ in picks]

        def translate(texts: list[str], direction: str) -> list[str]:
            reqs = self.requests(unit_ids, texts, direction)
            summary = self.runner.run(reqs, self.raw_dir / f"backtranslate-r{round_no}-{direction}.jsonl")
            self.summaries.append(_counts_only(summary))
            got = {r.id: (r.texts[0].strip() if r.ok and r.texts else "") for r in summary.rows}
            return [got.get(f"{uid}-{direction}", "") for uid in unit_ids]

        # Units stand in for their source rows so each result maps back to its unit id.
        units = [Row(uid, row.text, row.label) for uid, row in picks]
        source = {uid: row.id for uid, row in picks}
        rows = back_translate(units, translate, pivot=self.pivot, model=self.runner.backend.model,
                              seed=self.seed)
        return [r.model_copy(update={"id": synth_id(r.method, r.text, r.source_ids[0]),
                                     "source_ids": [source[r.source_ids[0]]], "prompt": self.ref})
                for r in rows]
