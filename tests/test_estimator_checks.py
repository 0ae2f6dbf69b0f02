"""scikit-learn's estimator contract for the text classifiers.

The estimators take raw texts, so their tags say ``input_tags.string=True,
two_d_array=False`` (as sklearn's own ``CountVectorizer``). sklearn >= 1.6 then yields
no checks for them at all (``parametrize_with_checks`` / ``check_estimator`` give only
``check_estimator_cloneable``), so the checks are listed from a view of each estimator
whose tags claim numeric 2-D input. The checks that need no data run on the real
estimator; the ones that fit or predict on numeric arrays are skipped, each with its
reason in :data:`SKIP`, and the ``test_text_*`` tests below check the same contract on
texts. The embedding models use :class:`TinyEmbedder`, so nothing loads e5.
"""

from __future__ import annotations

import pickle
from typing import Any, Iterator

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from llm_aug.classifiers.baselines import MajorityClassifier, TfidfLogReg, TfidfSVM
from llm_aug.classifiers.ensemble import SoftVoteClassifier
from llm_aug.classifiers.frozen import EmbeddingClassifier, StackedClassifier

try:
    from sklearn.utils.estimator_checks import estimator_checks_generator
except ImportError:  # scikit-learn < 1.6
    estimator_checks_generator = None

HAPPY = ["今天很开心", "天气真好开心", "开心快乐的一天"]
TIRED = ["工作好累", "累得不想动", "好烦好累"]
DARK = ["我想去死", "真的想死了", "不想活想死"]
TEXTS, LABELS = (HAPPY + TIRED + DARK) * 4, ([0] * 3 + [2] * 3 + [4] * 3) * 4
BINARY = [(t, y) for t, y in zip(TEXTS, LABELS) if y != 2]


class TinyEmbedder:
    """Deterministic, stateless and picklable: counts of a few characters plus the length."""

    name = "tiny-test"

    def __init__(self, chars: str = "开心乐累烦死想活") -> None:
        self.chars = chars

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text."""
        return np.array([[t.count(c) for c in self.chars] + [len(t)] for t in texts], dtype=np.float32)


ESTIMATORS = [MajorityClassifier(), TfidfLogReg(), TfidfSVM(), EmbeddingClassifier(embedder=TinyEmbedder()),
              StackedClassifier(embedder=TinyEmbedder()), SoftVoteClassifier(members=("tfidf-lr", "tfidf-svm"))]


def _numeric(on_texts: str) -> str:
    return f"fits or predicts on a numeric array, but X is raw text; on texts: {on_texts}"


_REJECTED = _numeric("test_text_non_text_X_is_a_type_error")
SKIP: dict[str, str] = {
    "check_fit_score_takes_y": _numeric("test_text_outputs_agree (fit(X, y) and score(X, y))"),
    "check_estimators_overwrite_params": _numeric("test_text_fit_leaves_params_alone"),
    "check_dont_overwrite_parameters": _numeric("test_text_fit_leaves_params_alone"),
    "check_estimators_fit_returns_self": _numeric("test_text_fit_returns_self_and_is_fitted"),
    "check_fit_check_is_fitted": _numeric("test_text_fit_returns_self_and_is_fitted"),
    "check_classifiers_train": _numeric("test_text_outputs_agree, test_text_bad_targets_are_value_errors"),
    "check_decision_proba_consistency": _numeric("test_text_outputs_agree"),
    "check_dict_unchanged": _numeric("test_text_outputs_agree"),
    "check_estimators_pickle": _numeric("test_text_pickle_and_refit_reproduce"),
    "check_fit_idempotent": _numeric("test_text_pickle_and_refit_reproduce"),
    "check_pipeline_consistency": _numeric("test_text_pickle_and_refit_reproduce (deterministic fits)"),
    "check_methods_subset_invariance": _numeric("test_text_predictions_ignore_batching"),
    "check_methods_sample_order_invariance": _numeric("test_text_predictions_ignore_batching"),
    "check_classifiers_classes": _numeric("test_text_string_labels"),
    "check_classifiers_one_label": _numeric("test_text_one_label"),
    "check_classifiers_regression_target": _numeric("test_text_bad_targets_are_value_errors"),
    "check_supervised_y_no_nan": _numeric("test_text_bad_targets_are_value_errors"),
    "check_requires_y_none": _numeric("test_text_bad_targets_are_value_errors"),
    "check_estimators_empty_data_messages": _numeric("test_text_bad_targets_are_value_errors"),
    "check_classifier_data_not_an_array": _numeric("test_text_array_likes"),
    "check_supervised_y_2d": _numeric("test_text_array_likes"),
    "check_class_weight_classifiers": _numeric("none; class_weight goes straight to sklearn's own linear models"),
    "check_n_features_in": "n_features_in_ counts numeric columns; texts have none (nor has CountVectorizer)",
    "check_n_features_in_after_fitting": "n_features_in_ counts numeric columns; texts have none",
    "check_array_api_input": "array-API namespaces carry numeric arrays; X is raw text",
    **dict.fromkeys(
        ["check_estimators_dtypes", "check_complex_data", "check_dtype_object", "check_estimators_nan_inf",
         "check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
         "check_f_contiguous_array_estimator", "check_readonly_memmap_input", "check_positive_only_tag_during_fit",
         "check_fit1d", "check_fit2d_1sample", "check_fit2d_1feature", "check_fit2d_predict1d"], _REJECTED),
}


def _check_name(check: Any) -> str:
    func = getattr(check, "func", check)
    extra = "".join(f",{k}={v}" for k, v in getattr(check, "keywords", {}).items())
    return func.__name__ + extra


def numeric_view(estimator: Any) -> Any:
    """The same estimator, tagged as taking 2-D numeric input, so sklearn lists its checks."""
    base = type(estimator)

    def tags(self: Any) -> Any:
        out = base.__sklearn_tags__(self)
        out.input_tags.two_d_array, out.input_tags.string = True, False
        return out

    return type(base.__name__, (base,), {"__sklearn_tags__": tags})(**estimator.get_params())


def sklearn_checks(estimators: list[Any]) -> Iterator[Any]:
    """One pytest param per (estimator, sklearn check); numeric-only checks are skipped with a reason."""
    if estimator_checks_generator is None:
        yield pytest.param(None, None, marks=pytest.mark.skip(reason="needs scikit-learn >= 1.6"))
        return
    for est in estimators:
        for _, check in estimator_checks_generator(numeric_view(est)):
            name, base = _check_name(check), getattr(check, "func", check).__name__
            marks = [pytest.mark.skip(reason=SKIP[base])] if base in SKIP else []
            yield pytest.param(est, check, marks=marks, id=f"{type(est).__name__}-{name}")


@pytest.mark.parametrize("estimator, check", list(sklearn_checks(ESTIMATORS)))
def test_sklearn_check(estimator: Any, check: Any) -> None:
    """sklearn's own check, run on the real (text-tagged) estimator."""
    check(estimator)


def test_skip_list_names_only_checks_sklearn_runs():
    """A renamed or retired sklearn check must not leave a stale skip behind."""
    if estimator_checks_generator is None:
        pytest.skip("needs scikit-learn >= 1.6")
    listed = {getattr(c, "func", c).__name__ for est in ESTIMATORS
              for _, c in estimator_checks_generator(numeric_view(est))}
    assert set(SKIP) <= listed, sorted(set(SKIP) - listed)


def test_tags_say_raw_text():
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.utils import get_tags

    for est in ESTIMATORS:
        tags = get_tags(est).input_tags
        assert tags.string and not tags.two_d_array, type(est).__name__


def fitted(est: Any, texts: list[str] = TEXTS, labels: list[Any] = LABELS) -> Any:
    """A fresh clone of ``est`` fitted on ``texts``/``labels``."""
    return clone(est).fit(texts, labels)


def each(estimators: list[Any]) -> Any:
    return pytest.mark.parametrize("est", estimators, ids=lambda e: type(e).__name__)


@each(ESTIMATORS)
def test_text_fit_returns_self_and_is_fitted(est):
    fresh = clone(est)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    assert fresh.fit(TEXTS, LABELS) is fresh
    check_is_fitted(fresh)
    assert fresh.classes_.tolist() == [0, 2, 4]


@each(ESTIMATORS)
def test_text_fit_leaves_params_alone(est):
    fresh = clone(est)
    before, attrs = joblib.hash(fresh.get_params()), set(vars(fresh))
    fresh.fit(TEXTS, LABELS)
    assert joblib.hash(fresh.get_params()) == before
    added = {a for a in set(vars(fresh)) - attrs if not a.startswith("_")}
    assert all(a.endswith("_") for a in added), sorted(added)


@each(ESTIMATORS)
@pytest.mark.parametrize("binary", [False, True], ids=["3-class", "binary"])
def test_text_outputs_agree(est, binary):
    texts, labels = map(list, zip(*BINARY)) if binary else (TEXTS, LABELS)
    model = fitted(est, texts, labels)
    state = joblib.hash(vars(model))
    pred, proba = model.predict(texts), model.predict_proba(texts)
    assert pred.shape == (len(texts),) and set(pred) <= set(model.classes_)
    assert proba.shape == (len(texts), len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], pred)
    if hasattr(model, "decision_function"):
        scores = model.decision_function(texts)
        assert scores.shape == ((len(texts),) if binary else proba.shape)
        picked = (scores > 0).astype(int) if binary else scores.argmax(axis=1)
        np.testing.assert_array_equal(model.classes_[picked], pred)
    if not isinstance(est, MajorityClassifier):
        assert model.score(texts, labels) == 1.0
    assert joblib.hash(vars(model)) == state  # predicting changes nothing


@each(ESTIMATORS)
def test_text_pickle_and_refit_reproduce(est):
    model = fitted(est)
    proba = model.predict_proba(TEXTS)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(TEXTS), proba)
    np.testing.assert_allclose(model.fit(TEXTS, LABELS).predict_proba(TEXTS), proba)
    np.testing.assert_allclose(fitted(est).predict_proba(TEXTS), proba)


@each(ESTIMATORS)
def test_text_predictions_ignore_batching(est):
    model = fitted(est)
    proba = model.predict_proba(TEXTS)
    order = np.random.default_rng(0).permutation(len(TEXTS))
    np.testing.assert_allclose(model.predict_proba([TEXTS[i] for i in order]), proba[order], atol=1e-12)
    for start in range(0, len(TEXTS), 5):
        np.testing.assert_allclose(model.predict_proba(TEXTS[start:start + 5]), proba[start:start + 5],
                                   atol=1e-12)


@each(ESTIMATORS)
def test_text_string_labels(est):
    names = {0: "low", 2: "mid", 4: "high"}
    model = fitted(est, TEXTS, [names[y] for y in LABELS])
    assert model.classes_.tolist() == ["high", "low", "mid"]
    assert set(model.predict(TEXTS)) <= {"high", "low", "mid"}
    if not isinstance(est, MajorityClassifier):
        assert model.predict(["好开心", "想死"]).tolist() == ["low", "high"]


@each(ESTIMATORS)
def test_text_one_label(est):
    """Either refuse with a message about classes, or always predict the one label."""
    try:
        model = fitted(est, TEXTS[:6], [3] * 6)
    except ValueError as exc:
        assert "class" in str(exc)
    else:
        assert model.predict(TEXTS).tolist() == [3] * len(TEXTS)


BAD_TARGETS = {
    "y is None": (TEXTS, None, "requires y to be passed"),
    "continuous y": (TEXTS, [0.5] * len(TEXTS), "Unknown label type"),
    "infinite y": (TEXTS, [np.inf] + [1.0] * (len(TEXTS) - 1), "infinity"),
    "missing label": (TEXTS, [None] + LABELS[1:], "Unknown label type"),
    "fewer labels than texts": (TEXTS, LABELS[:-1], "inconsistent numbers of samples"),
    "no texts": ([], [], "at least one text"),
}


@each(ESTIMATORS)
@pytest.mark.parametrize("case", list(BAD_TARGETS))
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # inf -> int probe
def test_text_bad_targets_are_value_errors(est, case):
    texts, labels, message = BAD_TARGETS[case]
    with pytest.raises(ValueError, match=message):
        clone(est).fit(texts, labels)


@each(ESTIMATORS)
def test_text_non_text_X_is_a_type_error(est):
    numbers = np.random.default_rng(0).normal(size=(len(LABELS), 3))
    with pytest.raises(TypeError, match="raw texts"):
        clone(est).fit(numbers, LABELS)
    with pytest.raises(TypeError, match="single str"):
        clone(est).fit("今天很开心", [0])
    model = fitted(est)
    with pytest.raises(TypeError, match="raw texts"):
        model.predict(numbers)
    with pytest.raises(TypeError, match="raw texts"):
        model.predict_proba(["开心", None])


@each(ESTIMATORS)
def test_text_array_likes(est):
    """Tuples, numpy string arrays and generators of texts fit like lists; a column y warns."""
    proba = fitted(est).predict_proba(TEXTS)
    for texts in (tuple(TEXTS), np.array(TEXTS), (t for t in TEXTS)):
        np.testing.assert_allclose(fitted(est, texts, np.array(LABELS)).predict_proba(TEXTS), proba)
    with pytest.warns(DataConversionWarning):
        column = fitted(est, TEXTS, np.array(LABELS)[:, None])
    np.testing.assert_allclose(column.predict_proba(TEXTS), proba)


@pytest.mark.parametrize("cls", [EmbeddingClassifier, StackedClassifier])
def test_text_set_params_takes_effect_on_refit(cls):
    model = cls(embedder=TinyEmbedder()).fit(TEXTS, LABELS)
    model.set_params(embedder=TinyEmbedder(chars="好"))  # a useless embedder: one feature
    model.fit(TEXTS, LABELS)
    assert model._embedder.chars == "好"
    np.testing.assert_allclose(model.predict_proba(TEXTS), fitted(model).predict_proba(TEXTS))


def test_bert_unfitted_raises_not_fitted_and_passes_data_free_checks():
    """BertClassifier only gets the checks that never fit (no model is loaded)."""
    pytest.importorskip("torch")
    from llm_aug.classifiers.bert import BertClassifier

    bert = BertClassifier("/nonexistent/bert", local_files_only=True)
    for method in ("predict", "predict_proba"):
        for X in (["我想死"], []):
            with pytest.raises(NotFittedError):
                getattr(bert, method)(X)
    if estimator_checks_generator is None:
        return
    for _, check in estimator_checks_generator(numeric_view(bert)):
        if getattr(check, "func", check).__name__ not in SKIP:
            check(bert)


# ------------------------------------------------ calibration (llm_aug.classifiers.calibration)
from llm_aug.classifiers.calibration import CalibratedModel, ProbaCalibrator  # noqa: E402

# A calibrated model wraps an already fitted classifier; its own fit only (re)fits the
# calibrator on held-out rows. Built with an unfitted calibrator, as clone() leaves it.
CALIBRATED = [CalibratedModel(TfidfLogReg().fit(TEXTS, LABELS), ProbaCalibrator(m), {"method": m})
              for m in ("sigmoid", "temperature")]
# ProbaCalibrator's X are probability rows (n, k) and y their column indices 0..k-1.
PROBA_SKIP = {
    name: "y must be column indices of X's k columns; the check's labels run past them (3 classes, 2 columns)"
    for name in ("check_estimators_overwrite_params", "check_estimators_fit_returns_self",
                 "check_readonly_memmap_input")
}


def calibrated_checks() -> Iterator[Any]:
    """sklearn's checks for CalibratedModel (text-tagged, as above) and ProbaCalibrator (numeric)."""
    if estimator_checks_generator is None:
        yield pytest.param(None, None, marks=pytest.mark.skip(reason="needs scikit-learn >= 1.6"))
        return
    for est in CALIBRATED:
        base = type(est)

        def tags(self: Any, base: type = base) -> Any:
            out = base.__sklearn_tags__(self)
            out.input_tags.two_d_array, out.input_tags.string = True, False
            return out

        view = type(base.__name__, (base,), {"__sklearn_tags__": tags})(**est.get_params(deep=False))
        for _, check in estimator_checks_generator(view):
            name, func = _check_name(check), getattr(check, "func", check).__name__
            marks = [pytest.mark.skip(reason=SKIP[func])] if func in SKIP else []
            yield pytest.param(est, check, marks=marks, id=f"CalibratedModel-{est.calibrator.method}-{name}")
    for method in ("none", "sigmoid", "isotonic", "temperature"):
        for est, check in estimator_checks_generator(ProbaCalibrator(method)):
            func = getattr(check, "func", check).__name__
            marks = [pytest.mark.skip(reason=PROBA_SKIP[func])] if func in PROBA_SKIP else []
            yield pytest.param(est, check, marks=marks, id=f"ProbaCalibrator-{method}-{_check_name(check)}")


@pytest.mark.parametrize("estimator, check", list(calibrated_checks()))
def test_sklearn_check_calibration(estimator: Any, check: Any) -> None:
    check(estimator)


def test_proba_skip_list_names_only_checks_sklearn_runs():
    if estimator_checks_generator is None:
        pytest.skip("needs scikit-learn >= 1.6")
    listed = {getattr(c, "func", c).__name__ for _, c in estimator_checks_generator(ProbaCalibrator())}
    assert set(PROBA_SKIP) <= listed, sorted(set(PROBA_SKIP) - listed)


def calibrated(est: CalibratedModel) -> CalibratedModel:
    """A clone (same inner model, fresh calibrator) calibrated on TEXTS/LABELS."""
    return clone(est).fit(TEXTS, LABELS)


@each(CALIBRATED)
def test_calibrated_text_contract(est):
    """Outputs agree, predicting changes nothing, pickling and batching reproduce, raw texts only."""
    model = calibrated(est)
    assert model.classes_.tolist() == [0, 2, 4]
    state = joblib.hash(vars(model))
    pred, proba = model.predict(TEXTS), model.predict_proba(TEXTS)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], pred)
    assert model.score(TEXTS, LABELS) == 1.0
    assert joblib.hash(vars(model)) == state
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(TEXTS), proba)
    np.testing.assert_allclose(calibrated(est).predict_proba(TEXTS), proba)
    order = np.random.default_rng(0).permutation(len(TEXTS))
    np.testing.assert_allclose(model.predict_proba([TEXTS[i] for i in order]), proba[order], atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(TEXTS[:5]), proba[:5], atol=1e-12)
    assert model.predict_proba([]).shape == (0, 3)
    with pytest.raises(TypeError, match="raw texts"):
        model.predict(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="single str"):
        clone(est).fit("今天很开心", [0])


@each(CALIBRATED)
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # inf -> int probe
def test_calibrated_string_labels_and_bad_targets(est):
    names = {0: "low", 2: "mid", 4: "high"}
    inner = TfidfLogReg().fit(TEXTS, [names[y] for y in LABELS])
    model = CalibratedModel(inner, est.calibrator).fit(TEXTS, [names[y] for y in LABELS])
    assert model.classes_.tolist() == ["high", "low", "mid"]
    assert model.predict(["好开心", "想死"]).tolist() == ["low", "high"]
    with pytest.raises(ValueError, match="not among"):
        clone(est).fit(TEXTS[:3], [0, 1, 2])  # 1 is no class of the inner model
    for texts, labels, message in BAD_TARGETS.values():
        with pytest.raises(ValueError, match=message):
            clone(est).fit(texts, labels)
