"""Classic baselines as scikit-learn estimators: majority class and char n-gram TF-IDF models.

Also the input checks and tags every text estimator in this package shares: ``X`` is a
sequence of raw texts (``str``), ``y`` one class label per text.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d


def check_texts(X: Any, who: str) -> list[str]:
    """``X`` as a list of str; TypeError for a bare string or items that are not text."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{who} expects a sequence of texts, got a single {type(X).__name__}")
    try:
        texts = list(X)
    except TypeError:
        raise TypeError(f"{who} expects a sequence of texts, got {type(X).__name__}") from None
    for item in texts:
        if not isinstance(item, str):
            raise TypeError(f"{who} expects raw texts (str), got an item of type {type(item).__name__}")
    return texts


def check_text_targets(X: Any, y: Any, who: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels for ``fit``; ValueError for no y, no texts, a length mismatch or a continuous y."""
    if y is None:
        raise ValueError(f"{who} requires y to be passed, but the target y is None")
    texts, labels = check_texts(X, who), column_or_1d(y, warn=True)
    check_consistent_length(texts, labels)
    if not texts:
        raise ValueError(f"{who} needs at least one text to fit (got 0)")
    check_classification_targets(labels)
    return texts, labels


class TextInputMixin:
    """Tells scikit-learn's tags that ``X`` is raw text, as its own ``CountVectorizer`` does."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class MajorityClassifier(TextInputMixin, ClassifierMixin, BaseEstimator):
    """Always predicts the most frequent training label (ties: the smallest label)."""

    def fit(self, X: Sequence[str], y: Sequence) -> "MajorityClassifier":
        """Count the labels; the texts are checked but not looked at."""
        _, labels = check_text_targets(X, y, type(self).__name__)
        self.classes_, counts = np.unique(labels, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]  # first maximum: the smallest label
        self.prior_ = counts / counts.sum()
        return self

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """The majority label for every text."""
        check_is_fitted(self)
        return np.full(len(check_texts(X, type(self).__name__)), self.majority_, dtype=self.classes_.dtype)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """The training label frequencies for every text."""
        check_is_fitted(self)
        return np.tile(self.prior_, (len(check_texts(X, type(self).__name__)), 1))


class _TfidfLinear(TextInputMixin, ClassifierMixin, BaseEstimator):
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

    def fit(self, X: Sequence[str], y: Sequence) -> "_TfidfLinear":
        """Fit the vectorizer and the linear model on ``X``/``y``."""
        texts, labels = check_text_targets(X, y, type(self).__name__)
        self.vectorizer_ = self._vectorizer()
        features = self.vectorizer_.fit_transform(texts)
        self.model_ = self._model().fit(features, labels)
        self.classes_ = self.model_.classes_
        return self

    def _features(self, X: Sequence[str]) -> Any:
        check_is_fitted(self)
        return self.vectorizer_.transform(check_texts(X, type(self).__name__))

    def decision_function(self, X: Sequence[str]) -> np.ndarray:
        """sklearn's convention: one column for two classes, else one per class."""
        features = self._features(X)  # checks fitted before self.model_ is looked up
        return self.model_.decision_function(features)

    def _scores(self, X: Sequence[str]) -> np.ndarray:
        scores = self.decision_function(X)
        return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """The label with the highest margin."""
        best = np.argmax(self._scores(X), axis=1)  # checks fitted before self.classes_ is looked up
        return self.classes_[best]


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
        """Class probabilities, columns in ``classes_`` order."""
        features = self._features(X)
        return self.model_.predict_proba(features)


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
        """Softmax over the margins (not calibrated), columns in ``classes_`` order."""
        return _softmax(self._scores(X))
