"""Bootstrap intervals and paired tests."""

from __future__ import annotations

import numpy as np
import pytest

from llm_aug.core.errors import UserError
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.bootstrap import bootstrap_ci, paired_bootstrap
from llm_aug.eval.metrics import METRICS, compute_metrics

SOS = load_scheme("sos11")


def _system(n: int, seed: int, noise: int = 2, p_invalid: float = 0.05) -> tuple[list, list]:
    """Gold levels and predictions off by up to ``noise`` levels, some unparseable."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 11, n)
    pred = np.clip(gold + rng.integers(-noise, noise + 1, n), 0, 10)
    invalid = rng.random(n) < p_invalid
    return gold.tolist(), [None if bad else int(p) for p, bad in zip(pred, invalid)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_point_estimates_match_compute_metrics(seed):
    # The vectorised formulas must agree with the scikit-learn based metrics.
    from llm_aug.eval.bootstrap import _encode, _point

    gold, pred = _system(40, seed, p_invalid=0.15)
    pred[0] = 10 if gold[0] < 5 else 0  # an out-of-range answer for this gold level
    ref = compute_metrics(gold, pred, SOS)
    for metric in METRICS:
        assert _point(*_encode(gold, pred, SOS.labels), metric) == pytest.approx(ref[metric]), metric


@pytest.mark.parametrize("metric", METRICS)
def test_ci_contains_point_and_narrows(metric):
    small_g, small_p = _system(60, 0)
    big_g, big_p = _system(1500, 0)
    point = compute_metrics(small_g, small_p, SOS)[metric]
    lo, hi = bootstrap_ci(small_g, small_p, metric, n_boot=500, seed=0, labels=SOS.labels)
    assert lo <= point <= hi
    blo, bhi = bootstrap_ci(big_g, big_p, metric, n_boot=500, seed=0, labels=SOS.labels)
    assert (bhi - blo) < 0.6 * (hi - lo)


def test_ci_is_deterministic_and_alpha_matters():
    gold, pred = _system(100, 4)
    a = bootstrap_ci(gold, pred, "weighted_f1", n_boot=300, seed=7)
    assert a == bootstrap_ci(gold, pred, "weighted_f1", n_boot=300, seed=7)
    wide = bootstrap_ci(gold, pred, "weighted_f1", n_boot=300, seed=7, alpha=0.01)
    assert wide[0] <= a[0] and wide[1] >= a[1] and wide != a


def test_ci_with_many_resamples_brackets_the_point():
    # Speed is a benchmark's business, not a unit test's: this only checks the result.
    gold, pred = _system(250, 5)
    point = compute_metrics(gold, pred, SOS)["weighted_f1"]
    lo, hi = bootstrap_ci(gold, pred, "weighted_f1", n_boot=1000, seed=0, labels=SOS.labels)
    assert 0.0 <= lo <= point <= hi <= 1.0 and lo < hi


def test_paired_clearly_better_system():
    gold, good = _system(200, 6, noise=0, p_invalid=0.0)
    rng = np.random.default_rng(6)
    good = [g if rng.random() < 0.9 else (g + 3) % 11 for g in gold]
    bad = [g if rng.random() < 0.5 else (g + 3) % 11 for g in gold]
    res = paired_bootstrap(gold, good, bad, "weighted_f1", n_boot=1000, seed=0, labels=SOS.labels)
    assert res["delta"] > 0.2
    assert res["ci"][0] > 0
    assert res["p_value"] < 0.05
    flipped = paired_bootstrap(gold, bad, good, "accuracy", n_boot=500, seed=0)
    assert flipped["delta"] < 0 and flipped["p_value"] < 0.05


def test_paired_identical_systems():
    gold, pred = _system(200, 8)
    res = paired_bootstrap(gold, pred, list(pred), "macro_f1", n_boot=500, seed=0)
    assert res["delta"] == 0
    assert tuple(res["ci"]) == (0.0, 0.0)
    assert res["p_value"] == pytest.approx(1.0)


def test_paired_equally_good_systems_rarely_significant():
    # Pairs of independent systems with the same error process on the same gold: the
    # two-sided p-value should be roughly uniform, so rarely below 0.05.
    p_values = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        gold = rng.integers(0, 11, 150)
        a = np.clip(gold + rng.integers(-2, 3, 150), 0, 10).tolist()
        b = np.clip(gold + rng.integers(-2, 3, 150), 0, 10).tolist()
        p_values.append(paired_bootstrap(gold.tolist(), a, b, "weighted_f1", n_boot=300)["p_value"])
    assert np.mean(np.array(p_values) < 0.05) <= 0.2
    assert np.median(p_values) > 0.2


def test_errors():
    with pytest.raises(UserError, match="unknown metric"):
        bootstrap_ci([0, 1], [0, 1], "f2")
    with pytest.raises(UserError, match="n_boot"):
        bootstrap_ci([0, 1], [0, 1], "accuracy", n_boot=0)
    with pytest.raises(UserError, match="differ in length"):
        paired_bootstrap([0, 1], [0, 1], [0], "accuracy")
