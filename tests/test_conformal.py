"""Conformal level sets: finite-sample coverage on synthetic data with a known answer.

Calibration splits of 200 posts (SOS-1K val's size). For continuous scores, split conformal
coverage over the draw of calibration and test posts has mean exactly
ceil((n+1)(1-alpha))/(n+1), inside [1-alpha, 1-alpha+1/(n+1)]. Each repeat's coverage (on
1000 fresh posts) has a standard deviation of about 0.022 (calibration draw 0.021, test draw
0.009; measured 0.0225), so the mean of R repeats has Monte Carlo error 0.022/sqrt(R): 0.0016
for R = 200; the checks allow 4 of those. The marginal check runs 800 repeats (+-0.0031), tight
enough to tell the right rank from one too low (coverage 180/201 = 0.8955 instead of 0.9005).
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from llm_aug.eval._proba_model import ProbaPassthrough
from llm_aug.eval.conformal import (
    ConformalSets,
    conformal_quantile,
    coverage_report,
    fit_conformal,
    format_set,
    predict_sets,
    set_masks,
)

N_CAL, N_TEST, ALPHA, REPEATS = 200, 1000, 0.1, 200
K = 11


def _mc(repeats: int = REPEATS) -> float:
    """Four Monte Carlo standard errors of a mean coverage over ``repeats``."""
    return 4 * 0.022 / math.sqrt(repeats)


MC = _mc()
EXPECTED = math.ceil((N_CAL + 1) * (1 - ALPHA)) / (N_CAL + 1)


def _ordinal_model(rng: np.random.Generator, n: int, spread: float = 1.5, sharp: float = 1.0):
    """True levels uniform on 0..10; the model's distribution centres on a noisy guess of the level.

    ``spread``: how far the guess strays (smaller: a better model); ``sharp``: how peaked the
    predicted distribution is around the guess.
    """
    y = rng.integers(0, K, n)
    guess = y + rng.normal(0, spread, n)
    logits = -sharp * (np.arange(K)[None, :] - guess[:, None]) ** 2 / 4
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), y


def _coverage(kind: str, score: str, seed: int, repeats: int = REPEATS, **model) -> tuple[np.ndarray, np.ndarray, list]:
    """Per repeat: coverage on fresh posts, mean set size; and per-level coverages."""
    rng = np.random.default_rng(seed)
    cov, size, per_level = [], [], []
    for _ in range(repeats):
        sets = fit_conformal(*_ordinal_model(rng, N_CAL, **model), alpha=ALPHA, kind=kind, score=score)
        p, y = _ordinal_model(rng, N_TEST, **model)
        m = set_masks(sets, p)
        hit = m[np.arange(N_TEST), y]
        cov.append(hit.mean())
        size.append(m.sum(axis=1).mean())
        per_level.append([hit[y == c].mean() for c in range(K)])
    return np.asarray(cov), np.asarray(size), per_level


def test_quantile_is_the_finite_sample_order_statistic():
    scores = np.arange(1, 200)[::-1].astype(float)  # n = 199: rank ceil(200 * 0.9) = 180
    assert conformal_quantile(scores, 0.1) == 180.0
    assert conformal_quantile(np.arange(1.0, 20.0), 0.1) == 18.0  # n = 19: rank 18
    assert conformal_quantile(np.arange(1.0, 9.0), 0.1) is None  # n = 8 < 1/alpha - 1
    assert conformal_quantile(np.arange(1.0, 10.0), 0.1) == 9.0  # n = 9: the largest


@pytest.mark.parametrize("score", ["lac", "aps"])
def test_marginal_sets_match_mapie(score):
    from mapie.classification import SplitConformalClassifier

    rng = np.random.default_rng(1)
    p, y = _ordinal_model(rng, 300)
    p_test, _ = _ordinal_model(rng, 500)
    sets = fit_conformal(p, y, ALPHA, "marginal", score)
    mapie = SplitConformalClassifier(ProbaPassthrough(n_classes=K).fit(p, y), confidence_level=1 - ALPHA,
                                     conformity_score=score, prefit=True, random_state=0).conformalize(p, y)
    assert (mapie.predict_set(p_test)[1][:, :, 0] == set_masks(sets, p_test)).all()


def test_marginal_lac_coverage_within_finite_sample_bounds():
    cov, _, _ = _coverage("marginal", "lac", seed=11, repeats=800)
    mc = _mc(800)
    print(f"marginal LAC coverage {cov.mean():.4f} (expected {EXPECTED:.4f}, +-{mc:.4f})")
    assert abs(cov.mean() - EXPECTED) <= mc
    assert 1 - ALPHA - mc <= cov.mean() <= 1 - ALPHA + 1 / (N_CAL + 1) + mc


def test_marginal_aps_covers():
    # MAPIE's APS keeps the last label (include_last_label=True): valid, a little conservative
    cov, _, _ = _coverage("marginal", "aps", seed=12, repeats=100)
    print(f"marginal APS coverage {cov.mean():.4f}")
    assert cov.mean() >= 1 - ALPHA - MC


def test_mondrian_covers_each_level_where_marginal_does_not():
    # The model is bad on the extreme levels (its distribution is pulled to the middle), so
    # marginal sets under-cover them; Mondrian sets must cover every level.
    rng = np.random.default_rng(5)

    def model(n):
        y = rng.integers(0, K, n)
        guess = np.where((y <= 1) | (y >= 9), 5 + rng.normal(0, 1.5, n), y + rng.normal(0, 0.7, n))
        logits = -(np.arange(K)[None, :] - guess[:, None]) ** 2 / 2
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True), y

    per = {"marginal": [], "mondrian": []}
    for _ in range(100):
        p_cal, y_cal = model(400)
        p, y = model(N_TEST)
        for kind in per:
            hit = set_masks(fit_conformal(p_cal, y_cal, ALPHA, kind, "lac"), p)[np.arange(N_TEST), y]
            per[kind].append([hit[y == c].mean() for c in range(K)])
    marginal, mondrian = np.mean(per["marginal"], axis=0), np.mean(per["mondrian"], axis=0)
    print("per-level coverage marginal", marginal.round(3), "mondrian", mondrian.round(3))
    assert marginal.min() < 1 - ALPHA - 0.1
    assert mondrian.min() >= 1 - ALPHA - 0.02  # 100 repeats of ~36 calibration posts per level


def test_ordinal_sets_are_contiguous_and_cover():
    cov, size, per_level = _coverage("ordinal", "lac", seed=21)
    print(f"ordinal coverage {cov.mean():.4f} (expected {EXPECTED:.4f}), mean size {size.mean():.2f}")
    assert 1 - ALPHA - MC <= cov.mean() <= 1 - ALPHA + 1 / (N_CAL + 1) + MC
    rng = np.random.default_rng(22)
    sets = fit_conformal(*_ordinal_model(rng, N_CAL), alpha=ALPHA, kind="ordinal")
    for s in predict_sets(sets, _ordinal_model(rng, 2000, spread=3.0)[0]):
        assert s and s == list(range(s[0], s[-1] + 1))
    # and on probabilities with no ordinal shape at all (bimodal rows)
    wild = rng.dirichlet(np.full(K, 0.3), 2000)
    for s in predict_sets(sets, wild):
        assert s == list(range(s[0], s[-1] + 1))


@pytest.mark.parametrize("kind,score", [("marginal", "lac"), ("marginal", "aps"), ("mondrian", "lac"),
                                        ("ordinal", "lac")])
def test_sets_shrink_when_the_model_is_sharper(kind, score):
    _, blunt, _ = _coverage(kind, score, seed=31, repeats=20, spread=2.0)
    _, sharp, _ = _coverage(kind, score, seed=31, repeats=20, spread=0.5, sharp=3.0)
    print(f"{kind}/{score}: mean size {blunt.mean():.2f} -> {sharp.mean():.2f}")
    assert sharp.mean() < 0.6 * blunt.mean()


def test_ordinal_growth_follows_the_more_probable_neighbour():
    p = np.array([[0.1, 0.2, 0.4, 0.25, 0.05]])  # grows 2, 3, 1, 0, 4; mass before: 0, .4, .65, .85, .95
    one = {"kind": "ordinal", "alpha": 0.1, "score": "ordinal_aps", "n_cal": 100, "n_classes": 5}
    assert predict_sets(ConformalSets(quantile=0.5, **one), p) == [[2, 3]]
    assert predict_sets(ConformalSets(quantile=0.7, **one), p) == [[1, 2, 3]]
    assert predict_sets(ConformalSets(quantile=0.0, **one), p) == [[2]]
    assert predict_sets(ConformalSets(quantile=0.9, **one), p) == [[0, 1, 2, 3]]
    # the calibration score of a true level is the mass before it joins
    fitted = fit_conformal(np.repeat(p, 9, axis=0), [0] * 9, alpha=0.1, kind="ordinal")
    assert fitted.quantile == pytest.approx(0.85)


def test_too_few_calibration_posts_give_all_labels_and_say_so():
    rng = np.random.default_rng(0)
    p, y = _ordinal_model(rng, 8)
    for kind in ("marginal", "ordinal"):
        sets = fit_conformal(p, y, 0.1, kind)
        assert sets.trivial and sets.quantile is None and "9" in sets.note
        assert all(len(s) == K for s in predict_sets(sets, p))
    p, y = _ordinal_model(rng, 60)
    y[:] = np.where(y == 3, 4, y)  # level 3 absent from calibration
    sets = fit_conformal(p, y, 0.1, "mondrian")
    assert sets.trivial and sets.per_level[3].n == 0 and sets.per_level[3].quantile is None
    assert all(3 in s for s in predict_sets(sets, p))
    named = fit_conformal(p, y + 10, 0.1, "mondrian", labels=list(range(10, 21)))
    assert "13" in named.note and named.labels == list(range(10, 21))


def test_sets_survive_json_and_labels_map_to_columns():
    rng = np.random.default_rng(2)
    p, y = _ordinal_model(rng, 300)
    for kind in ("marginal", "mondrian", "ordinal"):
        sets = fit_conformal(p, y, 0.1, kind, "aps")
        again = ConformalSets.model_validate_json(sets.model_dump_json())
        assert again == sets and (set_masks(again, p) == set_masks(sets, p)).all()
    # labels given: y holds label values (here 10..20), the sets are still column indices
    shifted = fit_conformal(p, y + 10, 0.1, "marginal", labels=list(range(10, 21)))
    assert shifted.quantile == fit_conformal(p, y, 0.1, "marginal").quantile
    with pytest.raises(ValueError):
        fit_conformal(p, y + 10, 0.1, "marginal")
    with pytest.raises(ValueError):
        fit_conformal(p, y, 0.1, "marginal", labels=[0, 1])


def test_importing_the_modules_loads_no_heavy_library():
    # MAPIE (with scikit-learn and scipy) loads only when a fit needs it: pages and the CLI
    # may import these modules for formatting alone
    code = ("import sys, llm_aug.eval.conformal, llm_aug.eval.risk_control; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mapie', 'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_format_set_and_coverage_report():
    labels = list(range(11))
    assert format_set(labels, [5, 6, 7, 8]) == "5-8"
    assert format_set(labels, [5, 3]) == "3,5"
    assert format_set(labels, [6]) == "6"
    assert format_set([0, 1], []) == ""
    report = coverage_report([[5, 6], [2], [0, 1, 2], [9]], [6, 3, 2, 9], labels)
    assert report["coverage"] == 0.75 and report["mean_size"] == 1.75 and report["n"] == 4
    assert report["per_level"]["3"] == {"coverage": 0.0, "n": 1, "mean_size": 1.0}
    assert report["per_level"]["0"] == {"coverage": None, "n": 0, "mean_size": None}
    assert report["size_histogram"] == {"1": 2, "2": 1, "3": 1}
