"""Recall-guaranteed high-risk thresholds (Learn-then-Test through MAPIE), on synthetic scores.

The scores of high-risk posts are Beta(a, b), of the others Beta(b, a), with SOS-1K val's
size and mix (200 posts, 45% high risk), so the truth is known: a threshold's recall on the
population is Beta(a, b)'s survival function, and fresh samples estimate it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from llm_aug.eval.risk_control import (
    ThresholdChoice,
    format_operating_table,
    high_risk_probability,
    high_risk_truth,
    operating_point,
    operating_table,
    positives_needed,
    recall_threshold,
)

N_CAL, PREVALENCE, REPEATS = 200, 0.45, 200


def _draw(rng: np.random.Generator, n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < PREVALENCE).astype(int)
    return np.where(y == 1, rng.beta(a, b, n), rng.beta(b, a, n)), y


def _naive_threshold(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """The highest threshold whose *calibration* recall reaches the target: no guarantee."""
    pos = np.sort(p[y == 1])[::-1]
    return float(pos[int(np.ceil(target * pos.size)) - 1])


def _fresh_recall(rng: np.random.Generator, thresholds: np.ndarray, a: float, b: float, n_fresh: int = 5000) -> np.ndarray:
    """Recall of each threshold on its own fresh sample of high-risk posts (vectorised over repeats)."""
    fresh = rng.beta(a, b, (thresholds.size, n_fresh))
    return (fresh >= thresholds[:, None]).mean(axis=1)


def test_high_risk_probability_collapses_levels_and_takes_the_binary_column():
    proba = np.full((2, 11), 1 / 11)
    proba[1] = 0.0
    proba[1, [2, 6, 10]] = [0.5, 0.3, 0.2]
    assert high_risk_probability(proba, list(range(11))) == pytest.approx([5 / 11, 0.5])
    assert high_risk_probability(proba, list(range(11)), level=8) == pytest.approx([3 / 11, 0.2])
    assert high_risk_probability(np.array([[0.7, 0.3], [0.1, 0.9]]), [0, 1]) == pytest.approx([0.3, 0.9])
    assert high_risk_truth([0, 5, 6, 10], list(range(11))).tolist() == [0, 0, 1, 1]
    assert high_risk_truth([0, 1, 1], [0, 1]).tolist() == [0, 1, 1]
    with pytest.raises(ValueError):
        high_risk_probability(proba[:, :5], list(range(11)))


def test_recall_guarantee_holds_on_fresh_samples_in_at_least_1_minus_delta_of_repeats():
    # Not vacuous: the naive threshold (calibration recall >= target, no correction) misses
    # the target on fresh samples about half the time, and must fail this very check.
    target, delta, a, b = 0.9, 0.1, 5.0, 2.0
    rng = np.random.default_rng(20240521)
    chosen, naive, valid = [], [], []
    for _ in range(REPEATS):
        p, y = _draw(rng, N_CAL, a, b)
        c = recall_threshold(p, y, target, delta)
        chosen.append(c.threshold)
        valid.append(c.valid)
        naive.append(_naive_threshold(p, y, target))
    ok = _fresh_recall(rng, np.asarray(chosen), a, b) >= target
    ok_naive = _fresh_recall(rng, np.asarray(naive), a, b) >= target
    exact = stats.beta(a, b).sf(np.asarray(chosen)) >= target  # the population recall, no sampling error
    print(f"recall >= {target} on fresh samples: {ok.mean():.3f} guaranteed vs {ok_naive.mean():.3f} naive "
          f"(population {exact.mean():.3f})")
    assert all(valid)
    assert ok.mean() >= 1 - delta and exact.mean() >= 1 - delta
    assert ok_naive.mean() < 1 - delta


def test_threshold_is_not_needlessly_low_when_scores_separate():
    target, delta, a, b = 0.9, 0.1, 8.0, 2.0
    rng = np.random.default_rng(7)
    oracle = stats.beta(a, b).isf(target)  # the threshold with population recall exactly 0.9
    thresholds = np.asarray([recall_threshold(*_draw(rng, N_CAL, a, b), target, delta).threshold for _ in range(50)])
    alerts = 1000 * (PREVALENCE * stats.beta(a, b).sf(thresholds) + (1 - PREVALENCE) * stats.beta(b, a).sf(thresholds))
    oracle_alerts = 1000 * (PREVALENCE * target + (1 - PREVALENCE) * stats.beta(b, a).sf(oracle))
    print(f"alerts/1000: median {np.median(alerts):.0f}, oracle {oracle_alerts:.0f}; threshold median "
          f"{np.median(thresholds):.3f}, oracle {oracle:.3f}")
    assert np.median(alerts) < 550 and np.median(alerts) < oracle_alerts + 100
    assert np.median(thresholds) > oracle - 0.15


def test_default_grid_loses_nothing_against_a_fine_grid():
    # Recall changes only at the high-risk scores, so the default grid (those scores and 0)
    # certifies the same flagged set on calibration as a fine 0..1 grid, at a threshold no lower
    # (MAPIE breaks ties between equally many alerts toward the lower threshold).
    rng = np.random.default_rng(3)
    p, y = _draw(rng, N_CAL, 5.0, 2.0)
    coarse = recall_threshold(p, y, 0.9, 0.1)
    fine = recall_threshold(p, y, 0.9, 0.1, grid=np.linspace(0, 1, 2001))
    assert coarse.valid and fine.valid
    assert fine.threshold <= coarse.threshold
    assert operating_point(p, y, fine.threshold) == operating_point(p, y, coarse.threshold)


def test_too_few_positives_says_so_and_flags_everything():
    rng = np.random.default_rng(0)
    p, y = _draw(rng, 60, 5.0, 2.0)
    y[np.flatnonzero(y == 1)[20:]] = 0  # 20 high-risk posts; recall 0.95 at delta 0.1 needs 45
    assert positives_needed(0.95, 0.1) == 45
    c = recall_threshold(p, y, 0.95, 0.1)
    assert not c.valid and c.threshold == 0.0 and c.n_pos == 20
    assert "45" in c.note
    assert operating_point(p, y, c.threshold)["alert_rate_per_1000"] == 1000.0
    none = recall_threshold(p, np.zeros_like(y), 0.9, 0.1)
    assert not none.valid and none.n_pos == 0 and none.threshold == 0.0


def test_enough_positives_with_no_miss_is_valid():
    # 45 high-risk posts all scored above every other: certified at target 0.95, delta 0.1
    p = np.r_[np.linspace(0.6, 1.0, 45), np.linspace(0.0, 0.4, 55)]
    y = np.r_[np.ones(45, int), np.zeros(55, int)]
    c = recall_threshold(p, y, 0.95, 0.1)
    assert c.valid and c.threshold == pytest.approx(0.6) and c.cal_recall == 1.0
    assert not recall_threshold(p[1:], y[1:], 0.95, 0.1).valid  # 44 is one short


def test_operating_point_and_table_count_by_hand():
    p = np.array([0.9, 0.8, 0.4, 0.3, 0.7, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0])
    op = operating_point(p, y, 0.5)
    assert op == {"recall": 2 / 3, "precision": 2 / 3, "alert_rate_per_1000": 500.0, "flagged": 3,
                  "missed": 1, "n": 6, "n_pos": 3}
    assert operating_point(p, y, 0.95)["precision"] is None
    choices = [ThresholdChoice(threshold=0.5, target=0.9, delta=0.1, valid=True, n_cal=200, n_pos=90),
               ThresholdChoice(threshold=0.0, target=0.99, delta=0.1, valid=False, n_cal=200, n_pos=90)]
    rows = operating_table(choices, p, y)
    assert [r["target"] for r in rows] == [0.9, 0.99] and rows[1]["recall"] == 1.0 and rows[1]["flagged"] == 6
    table = format_operating_table(rows)
    assert table.count("\n") == 3 and "| 0.9 | 0.1 | 0.500 | 0.667 | 0.667 | 500 | 1/3 | yes |" in table
    assert "no: flags all" in table
    assert ThresholdChoice.model_validate_json(choices[0].model_dump_json()) == choices[0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        recall_threshold(np.array([0.2, 1.5]), np.array([0, 1]), 0.9, 0.1)
    with pytest.raises(ValueError):
        recall_threshold(np.array([0.2, 0.5]), np.array([0, 1]), 1.0, 0.1)
    with pytest.raises(ValueError):
        recall_threshold(np.array([0.2, 0.5]), np.array([0, 1, 1]), 0.9, 0.1)
