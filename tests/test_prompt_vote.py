"""Self-consistency voting and log-probability scoring."""

from __future__ import annotations

import math

import pytest

from llm_aug.prompting.vote import score_from_logprobs, vote


@pytest.mark.parametrize("labels, ordinal, expected", [
    ([7, 7, 3], True, (7, 2 / 3)),
    ([7, 7, None, 3], True, (7, 0.5)),          # invalid answers count in the denominator
    ([3, 5], True, (3, 0.5)),                   # even tie: lower middle
    ([2, 6, 4], True, (4, 1 / 3)),              # odd tie: median
    ([8, 2, 6, 4], True, (4, 0.25)),            # four-way tie: lower middle of 2,4,6,8
    ([1, 9, 1, 9, 5], True, (1, 0.4)),          # only the tied labels count for the median
    ([1, 0], False, (0, 0.5)),                  # nominal tie: smallest id
    ([2, 0, 1], False, (0, 1 / 3)),
    ([None, None], True, (None, 0.0)),
    ([], True, (None, 0.0)),
    ([4], True, (4, 1.0)),
])
def test_vote(labels, ordinal, expected):
    label, confidence = vote(labels, ordinal=ordinal)
    assert label == expected[0]
    assert confidence == pytest.approx(expected[1])


def test_score_from_logprobs():
    label, conf = score_from_logprobs({0: math.log(0.6), 1: math.log(0.2)})
    assert label == 0 and conf == pytest.approx(0.75)
    assert score_from_logprobs({3: -1.0, 5: -1.0}) == (3, pytest.approx(0.5))
    assert score_from_logprobs({2: -1000.0, 4: -1001.0})[0] == 2  # no underflow
    assert score_from_logprobs({1: -math.inf, 2: -3.0}) == (2, 1.0)
    assert score_from_logprobs({}) == (None, 0.0)
    assert score_from_logprobs({1: -math.inf}) == (None, 0.0)
