"""A soft-voting ensemble of single methods, each calibrated where it has no probabilities."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.utils.validation import check_is_fitted

from llm_aug.classifiers.baselines import TextInputMixin, check_text_targets, check_texts
from llm_aug.classifiers.methods import SINGLE_METHODS, build, lookup


class SoftVoteClassifier(TextInputMixin, ClassifierMixin, BaseEstimator):
    """Average the class probabilities of several single methods (by registry name).

    Margin-based members (the SVM) are wrapped in sigmoid calibration with ``cv`` folds
    so their votes are probabilities, not softmaxed margins.
    """

    def __init__(self, members: Sequence[str] = ("stack", "tfidf-svm"), params: dict | None = None,
                 cv: int = 3, seed: int = 0):
        self.members, self.params, self.cv, self.seed = members, params, cv, seed

    def _member(self, name: str) -> Any:
        est = build(lookup(name, SINGLE_METHODS), (self.params or {}).get(name, {}), self.seed)
        if "svm" in name:
            return CalibratedClassifierCV(est, cv=self.cv, method="sigmoid")
        return est

    def member_estimators(self) -> list[Any]:
        """The fitted members, or before ``fit`` fresh ones (what ``fit`` would fit), e.g. to plan costs."""
        return list(getattr(self, "members_", None) or [self._member(name) for name in self.members])

    def fit(self, X: Sequence[str], y: Sequence) -> "SoftVoteClassifier":
        """Fit every member on ``X``/``y``."""
        texts, labels = check_text_targets(X, y, type(self).__name__)
        self.members_ = [self._member(name).fit(texts, labels) for name in self.members]
        self.classes_ = np.unique(labels)
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """The members' class probabilities, averaged."""
        check_is_fitted(self)
        texts = check_texts(X, type(self).__name__)
        return np.mean([m.predict_proba(texts) for m in self.members_], axis=0)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """The label with the highest averaged probability."""
        best = np.argmax(self.predict_proba(X), axis=1)  # checks fitted before self.classes_ is looked up
        return self.classes_[best]
