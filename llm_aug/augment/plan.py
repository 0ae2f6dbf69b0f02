"""How many synthetic posts each level needs, and what generating them will cost.

Balance strategies (``--balance``):

* ``max``  every level up to the largest level's count.
* ``N``    (an integer) every level up to N; levels already at or above N get nothing.
* ``xR``   (``x2``, ``x1.5``) every level to R times its count, capped at the largest
  level's count, so the majority level gets nothing and no level overtakes it. A level
  with no real posts stays empty (there is nothing to multiply, and no exemplars).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from llm_aug.core.errors import UserError

log = logging.getLogger(__name__)

_RATIO = re.compile(r"^x(\d+(?:\.\d+)?)$")


def plan_balance(counts: dict[int, int], balance: str, labels: Iterable[int]) -> dict[int, int]:
    """Synthetic rows needed per level (every label in ``labels``, zeros included)."""
    labels = list(labels)
    have = {lv: int(counts.get(lv, 0)) for lv in labels}
    largest = max(have.values(), default=0)
    spec = str(balance).strip().lower()
    if spec == "max":
        target = {lv: largest for lv in labels}
    elif spec.isdigit():
        target = {lv: max(int(spec), have[lv]) for lv in labels}
    elif m := _RATIO.match(spec):
        ratio = float(m.group(1))
        if ratio < 1:
            raise UserError(f"balance {balance!r}: the ratio must be at least 1")
        target = {lv: min(math.floor(have[lv] * ratio), largest) for lv in labels}
        empty = [lv for lv in labels if have[lv] == 0]
        if empty:
            log.warning("balance %s: levels %s have no real posts and stay empty", balance, empty)
    else:
        raise UserError(f"unknown balance {balance!r}; use 'max', an integer N, or xR such as x2")
    return {lv: max(0, target[lv] - have[lv]) for lv in labels}


class LevelPlan(BaseModel):
    """One level's share of a plan."""

    model_config = ConfigDict(extra="forbid")
    label: int
    have: int
    need: int
    generate: int  # need x over-generation, rounded up
    requests: int


class Plan(BaseModel):
    """Requests and a token estimate for reaching a balance target.

    ``overgenerate`` asks for more posts than needed because the filters reject some
    (on the paper's data 1-10%; on a small local model far more).
    """

    model_config = ConfigDict(extra="forbid")
    balance: str
    posts_per_request: int = Field(ge=1)
    overgenerate: float = Field(ge=1.0)
    prompt_tokens_per_request: int = Field(ge=0)
    tokens_per_post: int = Field(ge=1)
    levels: list[LevelPlan]

    @property
    def total_need(self) -> int:
        return sum(lv.need for lv in self.levels)

    @property
    def total_requests(self) -> int:
        return sum(lv.requests for lv in self.levels)

    @property
    def prompt_tokens(self) -> int:
        return self.total_requests * self.prompt_tokens_per_request

    @property
    def completion_tokens(self) -> int:
        return self.total_requests * self.posts_per_request * self.tokens_per_post

    def to_markdown(self, rule_based: bool = False) -> str:
        """A table per level plus totals and the token estimate.

        ``rule_based`` (synonym, EDA: no LLM) gives the rewrite table instead: per level
        the real posts, the target and the rewrites needed; no requests, no tokens.
        """
        if rule_based:
            return self._rule_markdown()
        lines = [
            (f"Balance `{self.balance}`, {self.posts_per_request} posts per request, "
             f"over-generation x{self.overgenerate:g}."),
            "",
            "| level | real | needed | to generate | requests |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {lv.label} | {lv.have} | {lv.need} | {lv.generate} | {lv.requests} |" for lv in self.levels]
        lines.append(f"| **total** | {sum(lv.have for lv in self.levels)} | {self.total_need} | "
                     f"{sum(lv.generate for lv in self.levels)} | {self.total_requests} |")
        total = self.prompt_tokens + self.completion_tokens
        lines += ["", (f"Estimated tokens: {self.prompt_tokens:,} prompt + "
                       f"{self.completion_tokens:,} completion = {total:,}.")]
        return "\n".join(lines) + "\n"

    def _rule_markdown(self) -> str:
        lines = [
            (f"Balance `{self.balance}`, rule-based rewrites of real posts (no LLM calls); "
             f"up to x{self.overgenerate:g} the rewrites needed are made, as the filters reject some."),
            "",
            "| level | have | target | rewrites needed |",
            "|---:|---:|---:|---:|",
        ]
        lines += [f"| {lv.label} | {lv.have} | {lv.have + lv.need} | {lv.need} |" for lv in self.levels]
        have = sum(lv.have for lv in self.levels)
        lines.append(f"| **total** | {have} | {have + self.total_need} | {self.total_need} |")
        return "\n".join(lines) + "\n"


def build_plan(counts: dict[int, int], balance: str, labels: Iterable[int], *,
               posts_per_request: int = 5, overgenerate: float = 1.5,
               prompt_tokens_per_request: int = 800, tokens_per_post: int = 80) -> Plan:
    """Turn :func:`plan_balance`'s needs into requests of ``posts_per_request`` posts.

    Token defaults: ~800 prompt tokens (instructions, level definition, a few
    exemplars) and ~80 completion tokens per post (SOS-1K posts average ~45 Chinese
    characters; ~1-1.5 tokens per character plus list formatting). Pass better numbers
    from :func:`estimate_tokens_per_post` when the training texts are at hand.
    """
    labels = list(labels)
    need = plan_balance(counts, balance, labels)
    levels = []
    for lv in labels:
        generate = math.ceil(need[lv] * overgenerate)
        levels.append(LevelPlan(label=lv, have=int(counts.get(lv, 0)), need=need[lv], generate=generate,
                                requests=math.ceil(generate / posts_per_request)))
    return Plan(balance=str(balance), posts_per_request=posts_per_request, overgenerate=overgenerate,
                prompt_tokens_per_request=prompt_tokens_per_request, tokens_per_post=tokens_per_post,
                levels=levels)


def nothing_to_add(plan: Plan) -> str | None:
    """Why ``plan`` asks for no posts at all, and what to ask instead; None when some level needs posts."""
    if plan.total_need or not plan.levels:
        return None
    largest = max(lv.have for lv in plan.levels)
    spec = plan.balance.strip().lower()
    if spec.isdigit():
        why = f"--balance {spec} fills levels up to {spec} posts, and every level already has at least that"
    else:  # max, or a ratio: both stop at the largest level; a ratio leaves empty levels empty
        why = (f"--balance {plan.balance} fills levels up to the largest one ({largest} posts), and every "
               f"level {'' if spec == 'max' else 'with real posts '}already has that many")
    return (f"nothing to add: {why}; ask for more posts per level with --balance N "
            f"(e.g. --balance {2 * largest})")


def estimate_tokens_per_post(texts: Iterable[str], tokens_per_char: float = 1.3, overhead: int = 8) -> int:
    """Rough completion tokens per generated post from real posts' mean length."""
    lengths = [len(t) for t in texts]
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    return max(1, math.ceil(mean * tokens_per_char) + overhead)
