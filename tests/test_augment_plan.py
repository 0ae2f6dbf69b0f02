"""Balance plans: max / N / xR arithmetic, request and token estimates."""

from __future__ import annotations

import math

import pytest

from llm_aug.augment.plan import build_plan, estimate_tokens_per_post, plan_balance
from llm_aug.core.errors import UserError

# fine/train.tsv level counts
SOS = dict(enumerate([41, 41, 43, 94, 158, 59, 136, 128, 26, 45, 28]))
LEVELS = list(range(11))


def test_max_fills_every_level_to_the_largest():
    need = plan_balance(SOS, "max", LEVELS)
    assert need[4] == 0
    assert need[0] == 158 - 41 and need[8] == 158 - 26
    assert all(SOS[lv] + need[lv] == 158 for lv in LEVELS)


def test_integer_target_leaves_larger_levels_alone():
    need = plan_balance(SOS, "100", LEVELS)
    assert need[4] == need[6] == need[7] == 0
    assert need[0] == 59 and need[3] == 6 and need[8] == 74


def test_ratio_multiplies_and_caps_at_the_largest_level():
    need = plan_balance(SOS, "x2", LEVELS)
    assert need[0] == 41                      # 82 < 158
    assert need[7] == 158 - 128               # 256 capped at 158
    assert need[4] == 0
    assert plan_balance(SOS, "x1.5", LEVELS)[8] == math.floor(26 * 1.5) - 26


def test_missing_level_is_planned_for_max_but_stays_empty_for_ratio():
    counts = {0: 10, 1: 4}
    assert plan_balance(counts, "max", [0, 1, 2]) == {0: 0, 1: 6, 2: 10}
    assert plan_balance(counts, "x3", [0, 1, 2]) == {0: 0, 1: 6, 2: 0}


@pytest.mark.parametrize("bad", ["most", "x0.5", "-3", "x", "2x"])
def test_bad_balance_is_a_user_error(bad):
    with pytest.raises(UserError):
        plan_balance(SOS, bad, LEVELS)


def test_plan_requests_tokens_and_markdown():
    plan = build_plan(SOS, "max", LEVELS, posts_per_request=5, overgenerate=1.5,
                      prompt_tokens_per_request=700, tokens_per_post=60)
    lv0 = plan.levels[0]
    assert (lv0.need, lv0.generate, lv0.requests) == (117, 176, 36)
    assert plan.levels[4].requests == 0
    assert plan.total_need == sum(plan_balance(SOS, "max", LEVELS).values())
    assert plan.total_requests == sum(math.ceil(math.ceil(n * 1.5) / 5)
                                      for n in plan_balance(SOS, "max", LEVELS).values())
    assert plan.prompt_tokens == plan.total_requests * 700
    assert plan.completion_tokens == plan.total_requests * 5 * 60
    md = plan.to_markdown()
    assert "| 0 | 41 | 117 | 176 | 36 |" in md
    assert f"| **total** | 799 | {plan.total_need} |" in md


def test_tokens_per_post_from_real_lengths():
    assert estimate_tokens_per_post(["一" * 10, "二" * 30], tokens_per_char=1.0, overhead=5) == 25
