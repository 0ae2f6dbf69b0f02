"""Post-hoc calibration of class probabilities: a map fitted on held-out rows, and a model wrapping it.

:class:`ProbaCalibrator` learns a map from probability rows to calibrated rows with
scikit-learn's ``CalibratedClassifierCV`` over a frozen identity classifier (the rows
are the features), so sigmoid (Platt, one-vs-rest), isotonic (one-vs-rest) and
temperature scaling are sklearn's own fits. :class:`CalibratedModel` puts it behind an
already fitted text classifier. :func:`calibrate_on` fits the map on given held-out rows
(e.g. val); :func:`calibrate_cross_fit` on out-of-fold probabilities over train.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from llm_aug.classifiers.baselines import TextInputMixin, check_text_targets, check_texts
from llm_aug.classifiers.frozen import decode
from llm_aug.core.errors import UserError, did_you_mean

logger = logging.getLogger(__name__)

CALIBRATION_METHODS = ("none", "sigmoid", "isotonic", "temperature")
_FLOOR = 1e-12  # probabilities are clipped here before taking logs (0 would be -inf)


def _rows(p: np.ndarray) -> np.ndarray:
    """Non-negative rows (n, k) renormalised to sum 1; an all-zero row becomes uniform."""
    sums = p.sum(axis=1, keepdims=True)
    return np.divide(p, sums, out=np.full_like(p, 1.0 / max(p.shape[1], 1)), where=sums > 0)


class _ProbaIdentity(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose predict_proba returns its input rows: the base model sklearn calibrates.

    Its ``decision_function`` (which ``CalibratedClassifierCV`` prefers) gives log-probabilities,
    the log-odds for two classes, so sigmoid is Platt scaling of the log-odds (one-vs-rest of
    log p_k for more classes) and temperature scales log-probabilities; isotonic is unaffected
    (monotone). On raw probabilities a sigmoid cannot undo even a plain power sharpening.
    """

    def __init__(self, n_classes: int = 2):
        self.n_classes = n_classes

    def fit(self, X: Any, y: Any = None) -> _ProbaIdentity:
        """Nothing to learn: the classes are the column indices."""
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The rows themselves."""
        return np.asarray(X, dtype=float)

    def decision_function(self, X: Any) -> np.ndarray:
        """log p (n, k); for two classes the log-odds log(p1 / p0) (n,), sklearn's binary shape."""
        logp = np.log(np.clip(np.asarray(X, dtype=float), _FLOOR, 1.0))
        return logp[:, 1] - logp[:, 0] if logp.shape[1] == 2 else logp

    def predict(self, X: Any) -> np.ndarray:
        """The column of each row's maximum."""
        return self.classes_[np.argmax(np.asarray(X), axis=1)]


class _AllRows:
    """One split, every row on both sides: the frozen base model is never refitted, and a
    k-fold splitter would refuse classes with fewer rows than folds."""

    def split(self, X: Any, y: Any = None, groups: Any = None):
        idx = np.arange(len(X))
        yield idx, idx

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return 1


class ProbaCalibrator(BaseEstimator):
    """A calibration map from probability rows (n, k) to calibrated rows (n, k), columns kept in order.

    ``fit(proba, y)`` takes ``y`` as column indices 0..k-1. ``"none"`` is the identity.
    Input rows are renormalised to sum to 1 (an all-zero row becomes uniform).
    Classes absent from the calibration rows cannot be calibrated: they keep their raw
    probability, and the classes present share the rest of each row in the proportions
    the fitted map gives them (rows still sum to 1). With fewer than two classes present
    nothing can be fitted: the map is the identity (``fallback_`` says so, with a warning).
    """

    def __init__(self, method: str = "sigmoid"):
        self.method = method

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # probabilities
        return tags

    def fit(self, proba: Any, y: Any) -> ProbaCalibrator:
        """Fit the map on held-out probability rows and their gold column indices."""
        _check_method(self.method)
        p, labels = validate_data(self, proba, y, dtype=np.float64, ensure_min_features=2)
        check_classification_targets(labels)
        check_non_negative(p, "ProbaCalibrator.fit")
        p = _rows(p)
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= p.shape[1]:
            raise ValueError(f"y must be integer column indices 0..{p.shape[1] - 1} (one per probability column)")
        self.n_classes_, self.present_ = p.shape[1], np.unique(labels)
        self.classes_, self.n_ = np.arange(self.n_classes_), len(p)
        self.fallback_, self.calibrator_ = None, None
        if self.method == "none":
            return self
        if len(self.present_) < 2:
            self.fallback_ = f"only class {self.present_.tolist()} in the calibration rows: left uncalibrated"
            logger.warning("calibration %s: %s", self.method, self.fallback_)
            return self
        if len(self.present_) < self.n_classes_:
            logger.info("calibration rows lack classes %s: they keep their raw probability",
                        sorted(set(self.classes_.tolist()) - set(self.present_.tolist())))
        # y re-coded 0..m-1 over the present classes, so sklearn sees a base model with exactly those.
        sub, coded = _rows(p[:, self.present_]), np.searchsorted(self.present_, labels)
        base = FrozenEstimator(_ProbaIdentity(len(self.present_)).fit(sub))
        self.calibrator_ = CalibratedClassifierCV(base, method=self.method, cv=_AllRows()).fit(sub, coded)
        return self

    def predict_proba(self, proba: Any) -> np.ndarray:
        """Calibrated rows, same shape and column order as ``proba``."""
        check_is_fitted(self, "n_classes_")
        p = validate_data(self, proba, dtype=np.float64, reset=False)
        check_non_negative(p, "ProbaCalibrator.predict_proba")
        p = _rows(p)
        if self.calibrator_ is None or not len(p):
            return p
        sub = p[:, self.present_]
        mass = sub.sum(axis=1, keepdims=True)  # what the present classes hold before calibration
        out = p.copy()
        out[:, self.present_] = _rows(self.calibrator_.predict_proba(_rows(sub))) * mass
        return _rows(out)


class CalibratedModel(TextInputMixin, ClassifierMixin, BaseEstimator):
    """An already fitted text classifier whose ``predict_proba`` passes through a fitted calibrator.

    ``estimator`` is never refitted here: ``fit(X, y)`` re-fits only (a clone of) the
    calibrator on ``estimator.predict_proba(X)``, i.e. calibrates on the held-out rows
    ``X``; ``clone`` keeps the same fitted estimator and an unfitted calibrator.
    ``info`` records how the calibrator was fitted: ``method``, ``split`` (``"val"`` or
    ``"cv"``), ``n`` rows and, for ``"cv"``, ``folds``. Pickles with the estimator inside
    (BERT included: its weights travel in its pickle), so ``save_model`` stores it whole.
    """

    def __init__(self, estimator: Any = None, calibrator: ProbaCalibrator | None = None, info: dict | None = None):
        self.estimator, self.calibrator, self.info = estimator, calibrator, info

    def __sklearn_clone__(self) -> CalibratedModel:
        return type(self)(self.estimator, clone(self.calibrator) if self.calibrator is not None else None,
                          dict(self.info) if self.info is not None else None)

    def _calibrator(self) -> ProbaCalibrator | None:
        """The calibrator ``fit`` made, else the one passed in; None unless fitted."""
        cal = getattr(self, "calibrator_", None)
        cal = self.calibrator if cal is None else cal
        return cal if cal is not None and hasattr(cal, "n_classes_") else None

    def __sklearn_is_fitted__(self) -> bool:
        return self._calibrator() is not None and hasattr(self.estimator, "classes_")

    def _active(self) -> ProbaCalibrator:
        check_is_fitted(self, msg="CalibratedModel has no fitted calibrator (or no fitted estimator): use "
                                  "calibrate_on/calibrate_cross_fit, or call fit(X_heldout, y_heldout)")
        return self._calibrator()  # type: ignore[return-value]

    @property
    def classes_(self) -> np.ndarray:
        """The wrapped estimator's classes (the calibrated columns are in this order)."""
        return np.asarray(self.estimator.classes_)

    def fit(self, X: Sequence[str], y: Sequence) -> CalibratedModel:
        """Calibrate on held-out ``X``/``y`` (labels among ``classes_``); the estimator stays as fitted."""
        texts, labels = check_text_targets(X, y, type(self).__name__)
        check_is_fitted(self.estimator)
        cal = clone(self.calibrator) if self.calibrator is not None else ProbaCalibrator("none")
        self.calibrator_ = cal.fit(self.estimator.predict_proba(texts), label_indices(self.classes_, labels))
        self.info_ = {**(self.info or {}), "method": cal.method, "split": "given", "n": len(texts)}
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities, columns in ``classes_`` order."""
        cal = self._active()
        texts = check_texts(X, type(self).__name__)
        if not texts:
            return np.empty((0, len(self.classes_)))
        return cal.predict_proba(self.estimator.predict_proba(texts))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """``classes_[argmax]`` of the calibrated probabilities.

        An estimator with an ordinal ``decode`` (``"expected"``/``"median"``, the frozen-encoder
        models) keeps its decoding, applied to the calibrated probabilities.
        """
        proba = self.predict_proba(X)
        how = getattr(self.estimator, "decode", "argmax")
        if isinstance(how, str) and how != "argmax":
            return decode(proba, self.classes_, how)
        return self.classes_[np.argmax(proba, axis=1)]

    def member_estimators(self) -> list[Any]:
        """The wrapped estimator (so ``frozen.embedders_of``/``warm_embeddings`` find its embedders)."""
        return [self.estimator]


def label_indices(classes: Any, labels: Any) -> np.ndarray:
    """Column index in ``classes`` of each label; ValueError naming labels the classifier does not know."""
    index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    values = np.asarray(labels).tolist()
    unknown = sorted({v for v in values if v not in index}, key=str)
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not among the classifier's classes {list(index)}")
    return np.array([index[v] for v in values], dtype=np.int64)


def _check_method(method: str, estimator: Any = None) -> None:
    if method not in CALIBRATION_METHODS:
        raise UserError(f"unknown calibration {method!r}{did_you_mean(method, CALIBRATION_METHODS)}; "
                        f"use one of: {', '.join(CALIBRATION_METHODS)}")
    if estimator is not None and not hasattr(estimator, "predict_proba"):
        raise UserError(f"{type(estimator).__name__} has no predict_proba: nothing to calibrate")


def calibrate_on(estimator: Any, method: str, texts: Sequence[str], y: Sequence) -> CalibratedModel:
    """Wrap the fitted ``estimator`` with ``method`` fitted on the held-out ``texts``/``y`` (e.g. val)."""
    _check_method(method, estimator)
    texts = check_texts(texts, "calibrate_on")
    if not texts:
        raise UserError("calibrate_on needs at least one held-out row")
    cal = ProbaCalibrator(method).fit(estimator.predict_proba(texts), label_indices(estimator.classes_, y))
    return CalibratedModel(estimator, cal, {"method": method, "split": "val", "n": len(texts)})


def _folds(labels: np.ndarray, cv: int, seed: int) -> StratifiedKFold:
    """``min(cv, rows of the smallest class)`` stratified folds, at least 2."""
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    folds = max(2, min(int(cv), smallest))
    if folds < cv:
        logger.info("cross-fitting with %d folds, not %d: the smallest class has %d rows", folds, cv, smallest)
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


def cross_fit_proba(make_estimator: Callable[[], Any], texts: Sequence[str], y: Sequence, classes: Any,
                    cv: int = 5, seed: int = 0) -> tuple[np.ndarray, int]:
    """Out-of-fold probabilities (n, len(classes)) and the fold count; row i comes from a model not fitted on i.

    Each fold's model is ``make_estimator()`` fitted on the other folds; its columns are
    placed under ``classes`` (a class missing from a fold's training rows gets 0 there).
    """
    texts, labels = check_text_targets(texts, y, "cross_fit_proba")
    index = label_indices(classes, labels)  # refuses labels outside classes
    if len(texts) < 2:
        raise UserError("cross-fitting needs at least 2 rows")
    splitter = _folds(labels, cv, seed)
    oof = np.zeros((len(texts), len(classes)))
    with warnings.catch_warnings():  # a single-row class: expected, documented in _folds
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(np.zeros(len(texts)), index))
    for train, held in splits:
        est = make_estimator().fit([texts[i] for i in train], labels[train])
        cols = label_indices(classes, est.classes_)
        oof[np.ix_(held, cols)] = est.predict_proba([texts[i] for i in held])
    return oof, splitter.get_n_splits()


def calibrate_cross_fit(make_estimator: Callable[[], Any], method: str, texts: Sequence[str], y: Sequence,
                        cv: int = 5, seed: int = 0) -> CalibratedModel:
    """Calibrate on out-of-fold probabilities over ``texts``; the returned model is fitted on all rows.

    Folds: stratified, shuffled with ``seed``, ``min(cv, rows of the smallest class)`` but
    at least 2; a class with one row is then missing from that row's training fold, so its
    out-of-fold probability there is 0. ``make_estimator()`` must return a fresh unfitted
    estimator each call.
    """
    _check_method(method)
    texts, labels = check_text_targets(texts, y, "calibrate_cross_fit")
    final = make_estimator().fit(texts, labels)
    _check_method(method, final)
    if method == "none":  # the identity needs no out-of-fold rows; it is fitted on one per class
        k = len(final.classes_)
        return CalibratedModel(final, ProbaCalibrator("none").fit(np.eye(k), np.arange(k)),
                               {"method": "none", "split": "cv", "n": len(texts), "folds": 0})
    oof, folds = cross_fit_proba(make_estimator, texts, labels, final.classes_, cv=cv, seed=seed)
    cal = ProbaCalibrator(method).fit(oof, label_indices(final.classes_, labels))
    return CalibratedModel(final, cal, {"method": method, "split": "cv", "n": len(texts), "folds": folds})
