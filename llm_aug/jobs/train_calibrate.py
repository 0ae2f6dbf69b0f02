"""``train --calibrate``: a trained classifier's probabilities recalibrated, on cross-fitted train or on val.

``on="cv"`` (the default): out-of-fold probabilities on train (5 stratified folds, each
fitted as the chosen estimator is) teach the calibration map, so val stays untouched and
its predictions remain a fair check. ``on="val"``: the map is fitted on val's predictions;
the written val predictions are then calibrated on themselves (optimistic), which the
model's config says. Test is never read. Methods that early-stop on val (``bert``) are
calibrated on val only: their cross-fitting would need a val split per fold.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_aug.classifiers.calibration import CALIBRATION_METHODS, calibrate_cross_fit, calibrate_on
from llm_aug.classifiers.methods import MethodSpec, build
from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset

log = logging.getLogger(__name__)
SPLITS = ("cv", "val")


def check_calibration(method: str, on: str, spec: MethodSpec) -> None:
    """One-line errors before anything is fitted."""
    if method not in CALIBRATION_METHODS:
        raise UserError(f"--calibrate {method!r}: use one of {', '.join(CALIBRATION_METHODS)}")
    if on not in SPLITS:
        raise UserError(f"--calibrate-on {on!r}: use cv (cross-fitted train) or val")
    if method != "none" and on == "cv" and spec.fit_with_val:
        raise UserError(f"--calibrate-on cv cannot cross-fit {spec.name!r} (it early-stops on val); "
                        "use --calibrate-on val")


def calibrate_trained(estimator: Any, spec: MethodSpec, params: dict[str, Any], seed: int, method: str,
                      on: str, train: Dataset, val: Dataset) -> tuple[Any, dict[str, Any] | None]:
    """(the calibrated model, what the config records), or the estimator unchanged for ``none``."""
    if method == "none":
        return estimator, None
    if not hasattr(estimator, "predict_proba"):
        raise UserError(f"--calibrate needs probabilities; {spec.name!r} has no predict_proba")
    if on == "val":
        model = calibrate_on(estimator, method, val.texts, val.labels)
        note = "fitted on val: the val predictions are calibrated on themselves (optimistic)"
    else:
        model = calibrate_cross_fit(lambda: build(spec, params, seed), method, train.texts, train.labels, seed=seed)
        note = "fitted on out-of-fold train probabilities; val untouched"
    info = {**dict(model.info), "note": note}
    log.info("calibrated %s (%s on %s)", spec.name, method, on)
    return model, info
