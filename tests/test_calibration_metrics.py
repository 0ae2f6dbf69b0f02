"""Calibration metrics (llm_aug.eval.calibration) on synthetic probabilities with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from llm_aug.core.errors import UserError
from llm_aug.eval.calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    log_loss,
    reliability_curve,
)
from llm_aug.eval.plots import plot_reliability


def calibrated_sample(n: int, k: int, seed: int, spread: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Softmax rows of random logits and labels drawn from those rows: calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * spread
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    y = (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return proba, np.minimum(y, k - 1)


def sharpened(proba: np.ndarray, power: float = 3.0) -> np.ndarray:
    """The same ranking, over-confident: rows raised to ``power`` and renormalised."""
    q = proba**power
    return q / q.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 5, 11])
def test_ece_small_when_calibrated_large_when_over_confident(k):
    proba, y = calibrated_sample(5000, k, seed=k)
    calibrated, over = expected_calibration_error(proba, y), expected_calibration_error(sharpened(proba), y)
    assert calibrated < 0.03, calibrated  # finite-sample noise only: 15 bins of ~333 posts
    assert over > 0.10, over
    assert over > 4 * calibrated


def test_ece_hand_computed():
    # Confidences 0.6, 0.7 (bin 1) and 0.8, 0.9 (bin 2); correct: yes/no and yes/yes.
    proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    y = np.array([0, 0, 0, 1])
    # bin 1: acc 0.5, conf 0.65; bin 2: acc 1.0, conf 0.85 -> 0.5*0.15 + 0.5*0.15
    assert expected_calibration_error(proba, y, n_bins=2) == pytest.approx(0.15)
    assert expected_calibration_error(proba, y, n_bins=1) == pytest.approx(abs(0.75 - 0.75))
    # Rows are sorted by confidence, not taken in input order.
    order = [3, 0, 2, 1]
    assert expected_calibration_error(proba[order], y[order], n_bins=2) == pytest.approx(0.15)


@pytest.mark.parametrize("n", [7, 15, 100, 101, 449])
@pytest.mark.parametrize("ties", [False, True])
def test_equal_mass_bins_have_equal_counts(n, ties):
    proba, y = calibrated_sample(n, 4, seed=n)
    if ties:  # one confidence repeated: bins are cut by position, still equal
        proba = np.tile([0.4, 0.3, 0.2, 0.1], (n, 1))
    curve = reliability_curve(proba, y, n_bins=15)
    counts = [b["count"] for b in curve]
    assert len(curve) == min(15, n) and sum(counts) == n
    assert max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)  # the remainder goes to the first bins
    conf = [b["confidence"] for b in curve]
    assert conf == sorted(conf)
    assert all(b["lo"] - 1e-12 <= b["confidence"] <= b["hi"] + 1e-12 for b in curve)


def test_reliability_curve_agrees_with_ece():
    proba, y = calibrated_sample(700, 5, seed=3)
    q = sharpened(proba)
    curve = reliability_curve(q, y)
    from_curve = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in curve) / len(y)
    assert from_curve == pytest.approx(expected_calibration_error(q, y))
    top = q.argmax(axis=1) == y
    assert sum(b["accuracy"] * b["count"] for b in curve) == pytest.approx(top.sum())
    # Over-confident: accuracy below confidence in nearly every bin.
    assert sum(b["accuracy"] < b["confidence"] for b in curve) >= 13


def test_brier_and_log_loss_match_sklearn():
    proba, y = calibrated_sample(300, 5, seed=4)
    assert brier_score(proba, y) == pytest.approx(brier_score_loss(y, proba, labels=range(5)))
    assert log_loss(proba, y) == pytest.approx(sk_log_loss(y, proba, labels=range(5)))
    binary, yb = calibrated_sample(300, 2, seed=5)
    # Two classes: the binary form mean((p1 - y)^2), half the multiclass sum.
    assert brier_score(binary, yb) == pytest.approx(np.mean((binary[:, 1] - yb) ** 2))
    assert brier_score(binary, yb) == pytest.approx(brier_score_loss(yb, binary[:, 1]))
    assert brier_score(np.full((4, 2), 0.5), [0, 1, 0, 1]) == pytest.approx(0.25)
    assert brier_score(np.eye(3)[[1, 2]], [0, 0]) == pytest.approx(2.0)  # multiclass: worst is 2


def test_log_loss_clips_zero_probability():
    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert log_loss(proba, [1, 0]) == pytest.approx((-math.log(1e-15) + math.log(2)) / 2)


def test_calibration_metrics_cis_contain_point_values_and_repeat():
    proba, y = calibrated_sample(400, 5, seed=6)
    q = sharpened(proba)
    out = calibration_metrics(q, y, n_boot=500, seed=1)
    assert set(out) == {"ece", "brier", "log_loss", "n", "n_bins", "n_boot", "interval", "ci", "ece_if_calibrated"}
    assert out["n"] == 400 and out["n_bins"] == 15 and out["n_boot"] == 500
    assert out["ece"] == pytest.approx(expected_calibration_error(q, y))
    assert out["brier"] == pytest.approx(brier_score(q, y))
    assert out["log_loss"] == pytest.approx(log_loss(q, y))
    for name in ("ece", "brier", "log_loss"):
        lo, hi = out["ci"][name]
        assert lo < out[name] < hi, (name, lo, out[name], hi)
        assert hi - lo < 0.5 * out[name]  # 400 posts: an informative interval, not [0, inf]
    assert calibration_metrics(q, y, n_boot=500, seed=1) == out
    assert calibration_metrics(q, y, n_boot=500, seed=2)["ci"] != out["ci"]
    small = calibration_metrics(q[:5], y[:5], n_boot=50)
    assert small["n_bins"] == 5
    basic = calibration_metrics(q, y, n_boot=500, seed=1, interval="basic")
    for name in ("ece", "brier", "log_loss"):  # the percentile interval reflected about the point
        lo, hi = out["ci"][name]
        assert basic["ci"][name] == pytest.approx([max(0, 2 * out[name] - hi), 2 * out[name] - lo])


@pytest.mark.parametrize("n", [200, 1000])
def test_ece_if_calibrated_separates_noise_from_miscalibration(n):
    """A calibrated model's ECE is not 0 at finite n; the range says how far from 0 chance takes it."""
    proba, y = calibrated_sample(n, 11, seed=n)
    fair = calibration_metrics(proba, y, n_boot=400)
    lo, hi = fair["ece_if_calibrated"]
    assert 0 < lo < fair["ece"] < hi
    over = calibration_metrics(sharpened(proba), y, n_boot=400)
    assert over["ece"] > 2 * over["ece_if_calibrated"][1]
    assert hi < (0.2 if n == 200 else 0.08)  # the floor shrinks with n


@pytest.mark.parametrize("proba, y, message", [
    ([[0.5, 0.6]], [0], "sums to"),
    ([[1.2, -0.2]], [0], "outside"),
    ([[0.5, 0.5]], [2], "column indices"),
    ([[0.5, 0.5]], [0.5], "column indices"),
    ([[0.5, 0.5], [0.5, 0.5]], [0], "proba rows"),
    (np.empty((0, 3)), [], "non-empty"),
])
def test_bad_inputs_are_user_errors(proba, y, message):
    with pytest.raises(UserError, match=message):
        expected_calibration_error(proba, y)


def test_plot_reliability_writes_png(tmp_path):
    proba, y = calibrated_sample(300, 11, seed=7)
    curves = {"tfidf-svm": reliability_curve(sharpened(proba), y),
              "tfidf-svm + 温度": reliability_curve(proba, y), "val (40)": reliability_curve(proba[:40], y[:40], 5)}
    path = tmp_path / "reliability.png"
    plot_reliability(curves, path, title="reliability, VAL split")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
