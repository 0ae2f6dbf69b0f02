"""Baseline estimators follow the scikit-learn contract and learn separable data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from llm_aug.classifiers.baselines import MajorityClassifier, TfidfLogReg, TfidfSVM
from llm_aug.classifiers.registry import get_method
from llm_aug.core.errors import UserError

TEXTS = ["今天很开心", "天气真好开心", "开心的一天", "我想去死", "真的想死了", "不想活想死"] * 3
LABELS = [0, 0, 0, 4, 4, 4] * 3


def test_majority_predicts_most_frequent_and_prior():
    clf = MajorityClassifier().fit(["a", "b", "c"], [2, 2, 5])
    assert clf.predict(["x", "y"]).tolist() == [2, 2]
    np.testing.assert_allclose(clf.predict_proba(["x"])[0], [2 / 3, 1 / 3])


@pytest.mark.parametrize("cls", [TfidfLogReg, TfidfSVM])
def test_tfidf_models_learn_and_pickle(cls):
    clf = cls().fit(TEXTS, LABELS)
    assert clf.predict(["好开心啊", "想死"]).tolist() == [0, 4]
    proba = clf.predict_proba(["好开心啊"])
    assert proba.shape == (1, 2) and abs(proba.sum() - 1) < 1e-9
    again = pickle.loads(pickle.dumps(clf))
    assert again.predict(TEXTS).tolist() == clf.predict(TEXTS).tolist()
    assert clone(clf).get_params() == clf.get_params()


def test_registry_grid_and_unknown_method():
    spec = get_method("tfidf-svm")
    cands = spec.candidates()
    assert len(cands) == 16 and len({tuple(sorted(c.items(), key=str)) for c in cands}) == 16
    with pytest.raises(UserError, match="unknown method 'nope'"):
        get_method("nope")
