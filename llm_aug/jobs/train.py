"""Python API behind ``llm-aug train`` and ``llm-aug predict``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonlines
import numpy as np
from pydantic import Field

from llm_aug.classifiers.frozen import warm_embeddings
from llm_aug.classifiers.registry import DEFAULT_METHOD, MethodSpec, build, get_method
from llm_aug.classifiers.store import CONFIG_FILE, MODEL_FILE, SCHEME_FILE, load_model, save_model
from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write, atomic_write_text
from llm_aug.core.manifest import MANIFEST_FILE, write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.core.progress import progress, progress_bar
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.parquet import is_parquet, write_objects
from llm_aug.data.parquet import output_format as check_output_format
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.metrics import weighted_f1
from llm_aug.jobs.results import JobResult, ResultPart
from llm_aug.jobs.train_calibrate import calibrate_trained, check_calibration

log = logging.getLogger(__name__)
VAL_PREDICTIONS_FILE, SEEDS_FILE = "val_predictions.jsonl", "seeds.json"
#: Rows per predict call when writing predictions: the bar then moves (with an ETA) on
#: large inputs; every method predicts each row on its own, so results do not change.
PREDICT_CHUNK = 5_000
# What a model directory holds (no input may be one of these).
MODEL_WRITES = (MODEL_FILE, CONFIG_FILE, SCHEME_FILE, VAL_PREDICTIONS_FILE, MANIFEST_FILE)


class Candidate(ResultPart):
    """One hyper-parameter candidate of the grid, as the train manifest's selection_table lists it."""

    params: dict[str, Any] = Field(description="the estimator parameters tried")
    val_weighted_f1: float = Field(description="its weighted F1 on val")
    fit_seconds: float = Field(description="time to fit it (on the selection sample, if one was drawn)")


class TrainResult(JobResult):
    """What :func:`train_model` produced."""

    out_dir: Path = Field(description="the model directory written")
    method: str = Field(description="the method trained")
    params: dict[str, Any] = Field(description="the parameters chosen on val (and the fixed ones)")
    val_weighted_f1: float = Field(description="the chosen model's weighted F1 on val")
    selection: list[Candidate] = Field(description="every candidate tried, in grid order")


class SeedsResult(JobResult):
    """What :func:`train_seeds` produced; its JSON is ``OUT/seeds.json``, key for key."""

    seeds: list[int] = Field(description="the seeds, one model each in OUT/seed-N")
    val_weighted_f1: dict[int, float] = Field(description="val weighted F1 per seed")
    mean: float = Field(description="mean over the seeds")
    std: float = Field(description="sample standard deviation over the seeds (0 for one seed)")


class PredictResult(JobResult):
    """What :func:`predict_file` wrote."""

    output: Path = Field(description="the predictions JSONL (id, text, pred, proba), in input order")
    n_rows: int = Field(description="predictions written, one per input row")


def _score(estimator: Any, data: Dataset, scheme: LabelScheme) -> float:
    pred = estimator.predict(data.texts)
    return weighted_f1(data.labels, pred, scheme.labels)


def fit(spec: MethodSpec, params: dict[str, Any], seed: int, train: Dataset, val: Dataset) -> Any:
    """Build and fit one estimator; val goes into ``fit`` for methods that early-stop on it."""
    est = build(spec, params, seed)
    if "labels" in est.get_params() and est.get_params()["labels"] is None and train.scheme:
        # Keep one output column per scheme level even when a level is missing from train.
        est.set_params(labels=train.scheme.labels)
    if spec.fit_with_val:
        return est.fit(train.texts, train.labels, val.texts, val.labels)
    return est.fit(train.texts, train.labels)


#: Above this many training rows, grid candidates are compared on a stratified sample of
#: this size and only the winner is fitted on all rows: a 16-candidate TF-IDF grid on
#: 100,000 posts would otherwise take hours on 2 cores (bench/scale.py).
SELECTION_SAMPLE = 20_000


def selection_sample(train: Dataset, limit: int, seed: int) -> Dataset:
    """A stratified sample of ``limit`` rows of ``train`` (plain random where a level is too rare)."""
    if len(train) <= limit:
        return train
    rng = np.random.default_rng(seed)
    labels = np.asarray(train.labels)
    keep: list[int] = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        share = max(1, round(limit * len(idx) / len(labels)))
        keep.extend(rng.choice(idx, size=min(share, len(idx)), replace=False).tolist())
    rows = [train.rows[i] for i in sorted(keep)]
    return Dataset(rows, train.path, train.scheme, {**train.meta, "selection_sample": len(rows)})


def candidate_params(spec: MethodSpec, fixed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The grid's candidates with ``fixed`` parameters applied, duplicates dropped."""
    # Fixed parameters override grid keys; drop the candidates that then coincide.
    merged = [{**params, **(fixed or {})} for params in spec.candidates()]
    return [p for i, p in enumerate(merged) if p not in merged[:i]]


def select_on_val(spec: MethodSpec, train: Dataset, val: Dataset, scheme: LabelScheme, seed: int,
                  fixed: dict[str, Any] | None = None, *,
                  sample: int | None = SELECTION_SAMPLE) -> tuple[dict[str, Any], Any, list[dict[str, Any]]]:
    """Fit every grid candidate on train, score weighted F1 on val; return best params and model.

    ``fixed`` parameters (from the user) override the grid. Ties go to the earlier
    candidate so the choice is deterministic. With several candidates and more than
    ``sample`` training rows, candidates are compared on a stratified sample and the
    winner is refitted on all of train (the returned model).
    """
    unique = candidate_params(spec, fixed)
    # Embed train and val once, cost stated up front; every candidate then reads the cache.
    warm_embeddings(build(spec, unique[0], seed), train.texts + val.texts)
    subset = selection_sample(train, sample, seed) if sample and len(unique) > 1 else train
    table, best_est, best_score = [], None, -1.0
    for params in progress(unique, desc=f"select {spec.name} on val", unit="candidate"):
        t0 = time.perf_counter()
        est = fit(spec, params, seed, subset, val)
        score = _score(est, val, scheme)
        table.append({"params": params, "val_weighted_f1": score,
                      "fit_seconds": round(time.perf_counter() - t0, 3)})
        if score > best_score:
            best_est, best_score = est, score
    best = max(range(len(table)), key=lambda i: (table[i]["val_weighted_f1"], -i))
    if subset is not train:
        log.info("%s: candidates compared on %d of %d training rows; refitting %s on all",
                 spec.name, len(subset), len(train), table[best]["params"])
        best_est = fit(spec, table[best]["params"], seed, train, val)
    return table[best]["params"], best_est, table


def write_predictions(estimator: Any, data: Dataset, path: Path) -> None:
    """Write one object per row, in input order: id, text, pred, proba when available.

    JSONL, or Parquet when ``path`` ends ``.parquet``. The file appears whole or not at
    all (a temp file renamed at the end).
    """
    warm_embeddings(estimator, data.texts)
    with progress_bar(len(data), desc=f"predict {path.name}", unit="post") as bar:
        rows = _predicted(estimator, data, bar)
        if is_parquet(path):
            write_objects(path, list(rows))
        else:
            atomic_write(path, lambda fh: jsonlines.Writer(fh).write_all(rows))


def _predicted(estimator: Any, data: Dataset, bar: Any) -> Iterator[dict[str, Any]]:
    for start in range(0, len(data), PREDICT_CHUNK):
        rows = data.rows[start:start + PREDICT_CHUNK]
        texts = [row.text for row in rows]
        pred = estimator.predict(texts)
        proba = estimator.predict_proba(texts) if hasattr(estimator, "predict_proba") else None
        for i, row in enumerate(rows):
            obj: dict[str, Any] = {"id": row.id, "text": row.text, "pred": int(pred[i])}
            if proba is not None:
                obj["proba"] = [round(float(p), 6) for p in np.asarray(proba[i])]
            yield obj
        bar.update(len(rows))


def train_model(task: Task | str, train_path: str | Path, val_path: str | Path, out_dir: str | Path,
                *, method: str | None = None, seed: int = 0, load_kwargs: dict | None = None,
                params: dict[str, Any] | None = None, calibrate: str = "none",
                calibrate_on: str = "cv") -> TrainResult:
    """Train ``method`` on train, choose its hyper-parameters on val, save a model directory.

    ``params`` fix estimator parameters (e.g. ``model_name_or_path`` for ``bert``).
    ``calibrate`` (sigmoid, isotonic, temperature) recalibrates its probabilities after
    selection, on cross-fitted train (``calibrate_on="cv"``) or on val
    (:mod:`llm_aug.jobs.train_calibrate`); the config records which.
    """
    check_outputs(out_dir=out_dir, inputs=(train_path, val_path), writes=MODEL_WRITES)
    scheme = scheme_for_task(task)
    spec = get_method(method or DEFAULT_METHOD[task])
    check_calibration(calibrate, calibrate_on, spec)
    kwargs = load_kwargs or {}
    train = load_dataset(train_path, scheme, **kwargs)
    val = load_dataset(val_path, scheme, **kwargs)
    out = Path(out_dir)
    params, estimator, table = select_on_val(spec, train, val, scheme, seed, params)
    estimator, calibration = calibrate_trained(estimator, spec, params, seed, calibrate, calibrate_on, train, val)
    val_f1 = _score(estimator, val, scheme)
    config = {"task": task, "scheme": scheme.name, "method": spec.name, "params": params,
              "seed": seed, "selection": selection_note(len(train), len(table)),
              "load": kwargs, "val_weighted_f1": val_f1}
    if calibration is not None:  # absent otherwise: uncalibrated model directories keep their bytes
        config["calibration"] = calibration
    save_model(out, estimator, scheme, config)
    write_predictions(estimator, val, out / VAL_PREDICTIONS_FILE)
    write_manifest(out, "train", data_files=[train_path, val_path], config=config, seed=seed,
                   extra={"selection_table": table})
    log.info("trained %s: val weighted F1 %.4f with %s", spec.name, val_f1, params)
    return TrainResult(out_dir=out, method=spec.name, params=params, val_weighted_f1=val_f1, selection=table)


def selection_note(n_train: int, n_candidates: int) -> str:
    """How hyper-parameters are chosen for ``n_train`` rows and ``n_candidates`` (config's ``selection``)."""
    if n_candidates > 1 and n_train > SELECTION_SAMPLE:
        return (f"grid on val weighted F1, candidates fit on a stratified sample of {SELECTION_SAMPLE:,} "
                f"of {n_train:,} train rows, the chosen one refit on all of train")
    return "grid on val weighted F1, fit on train"


def train_seeds(task: Task | str, train_path: str | Path, val_path: str | Path, out_dir: str | Path, *,
                seeds: list[int], method: str | None = None, load_kwargs: dict | None = None,
                params: dict[str, Any] | None = None) -> SeedsResult:
    """One model per seed in ``out_dir/seed-N``; writes ``seeds.json`` with mean and std."""
    out = Path(out_dir)
    check_outputs(out_dir=out, inputs=(train_path, val_path), writes=(SEEDS_FILE,))
    scores = {}
    for seed in seeds:
        res = train_model(task, train_path, val_path, out / f"seed-{seed}", method=method, seed=seed,
                          load_kwargs=load_kwargs, params=params)
        scores[seed] = res.val_weighted_f1
    values = np.array(list(scores.values()))
    summary = SeedsResult(seeds=seeds, val_weighted_f1=scores, mean=float(values.mean()),
                          std=float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    atomic_write_text(out / SEEDS_FILE, json.dumps(summary.to_json(), indent=2))
    return summary


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 *, load_kwargs: dict | None = None, profile: str | Path | None = None,
                 triage: str | Path | None = None, output_format: str | None = None) -> PredictResult:
    """Predict every row of ``input_path`` (labels optional) into a JSONL or Parquet file.

    ``output_format`` (``jsonl``/``parquet``) must agree with the output's extension,
    which alone decides when it is None.

    Under a screening profile (``profile``, default the model directory's own
    ``screening.json`` when it has one) each row also gets ``p_high``, ``levels`` (the
    conformal level set) and ``alerts``; ``triage`` also writes the review queue there.
    """
    from llm_aug.jobs.screening import PROFILE_FILE

    check_outputs(output=output_path, inputs=(input_path,))
    fmt = check_output_format(output_path, output_format)
    estimator, scheme, config = load_model(model_dir)
    data = load_dataset(input_path, scheme, require_labels=False, **(load_kwargs or {}))
    output = Path(output_path)
    write_predictions(estimator, data, output)
    if profile is None and (Path(model_dir) / PROFILE_FILE).is_file():
        profile = model_dir
    if profile is None and triage is not None:
        raise UserError(f"--triage needs a screening profile: run `llm-aug calibrate-threshold {model_dir}` "
                        "first, or give --profile DIR")
    if profile is not None:
        from llm_aug.jobs.triage import annotate_predictions
        from llm_aug.jobs.triage import triage as write_queue

        annotate_predictions(output, profile)
        if triage is not None:
            write_queue(output, profile, triage)
    write_manifest(output.parent, "predict", data_files=[input_path],
                   config={"model_dir": str(model_dir), "model": config, "output": str(output), "format": fmt,
                           **({"profile": str(profile)} if profile is not None else {})},
                   name=f"{output.stem}.manifest.json")
    return PredictResult(output=output, n_rows=len(data))
