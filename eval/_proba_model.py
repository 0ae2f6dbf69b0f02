"""A prefit scikit-learn classifier whose input *is* its predicted probabilities.

MAPIE's conformal classes calibrate a model on features; passing the probabilities as the
features lets them calibrate scores that any classifier (or an LLM) produced elsewhere.
Kept apart so importing :mod:`llm_aug.eval.conformal` does not import scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ProbaPassthrough(ClassifierMixin, BaseEstimator):
    """``predict_proba(X) == X``; ``fit`` only records the classes (column indices)."""

    def __init__(self, n_classes: int = 2) -> None:
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> "ProbaPassthrough":
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(np.asarray(X, dtype=float), axis=1)
