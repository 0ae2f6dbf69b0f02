"""Classic baselines as scikit-learn estimators: majority class and char n-gram TF-IDF models."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """Always predicts the most frequent training label (ties: the smallest label)."""

    def fit(self, X: Sequence[str], y: Sequence[int]) -> "MajorityClassifier":
        counts = Counter(int(v) for v in y)
        self.classes_ = np.array(sorted(counts))
        self.majority_ = max(self.classes_, key=lambda c: (counts[c], -c))
        freqs = np.array([counts[c] for c in self.classes_], dtype=float)
        self.prior_ = freqs / freqs.sum()
        return self

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return np.full(len(X), self.majority_, dtype=int)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return np.tile(self.prior_, (len(X), 1))


class _TfidfLinear(ClassifierMixin, BaseEstimator):
    """Shared char n-gram TF-IDF front end; subclasses pick the linear model."""

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer="char",
            ngram_range=(self.ngram_min, self.ngram_max),
            sublinear_tf=True,
            min_df=self.min_df,
        )

    def _model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Sequence[str], y: Sequence[int]) -> "_TfidfLinear":
        self.vectorizer_ = self._vectorizer()
        features = self.vectorizer_.fit_transform(list(X))
        self.model_ = self._model().fit(features, np.asarray(y, dtype=int))
        self.classes_ = self.model_.classes_
        return self

    def decision_function(self, X: Sequence[str]) -> np.ndarray:
        """sklearn's convention: one column for two classes, else one per class."""
        return self.model_.decision_function(self.vectorizer_.transform(list(X)))

    def _scores(self, X: Sequence[str]) -> np.ndarray:
        scores = self.decision_function(X)
        return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return self.classes_[np.argmax(self._scores(X), axis=1)]


class TfidfLogReg(_TfidfLinear):
    """Char n-gram TF-IDF + multinomial logistic regression."""

    def __init__(self, C: float = 10.0, ngram_min: int = 1, ngram_max: int = 3,
                 min_df: int = 1, class_weight: str | None = "balanced", seed: int = 0):
        self.C, self.ngram_min, self.ngram_max = C, ngram_min, ngram_max
        self.min_df, self.class_weight, self.seed = min_df, class_weight, seed

    def _model(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, class_weight=self.class_weight,
                                  max_iter=2000, random_state=self.seed)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return self.model_.predict_proba(self.vectorizer_.transform(list(X)))


class TfidfSVM(_TfidfLinear):
    """Char n-gram TF-IDF + linear SVM.

    ``predict_proba`` is a softmax over the SVM margins: it ranks like the SVM and
    sums to one, but it is not a calibrated probability.
    """

    def __init__(self, C: float = 1.0, ngram_min: int = 1, ngram_max: int = 3,
                 min_df: int = 1, class_weight: str | None = "balanced", seed: int = 0):
        self.C, self.ngram_min, self.ngram_max = C, ngram_min, ngram_max
        self.min_df, self.class_weight, self.seed = min_df, class_weight, seed

    def _model(self) -> LinearSVC:
        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.seed)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return _softmax(self._scores(X))
