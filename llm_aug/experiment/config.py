"""Experiment configuration: tasks x systems x training sets x seeds, validated up front.

The schema only; :mod:`llm_aug.experiment.resolve` reads the file, resolves paths and
turns every problem into a one-line ``UserError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from llm_aug.classifiers.registry import METHODS, get_method
from llm_aug.core.errors import did_you_mean
from llm_aug.eval.risk_control import parse_recall_target
from llm_aug.llm.config import LLMConfig
from llm_aug.prompting.classify import ClassifyConfig

Task = Literal["fine", "binary"]
ORIGINAL = "original"
ZERO_SHOT = "zero-shot"  # the train-set slot of an LLM step that reads no training data
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# Defaults of an LLM system: the offline smoke-test model through embedded llama.cpp.
DEFAULT_BACKEND: dict[str, Any] = {"kind": "llamacpp", "model": "test"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, _ . + - only)")
    return value


class _SystemBase(_Strict):
    name: str
    tasks: list[Task] | None = Field(None, description="default: every task of the experiment")
    train_sets: list[str] | None = Field(None, description="names; default depends on kind")
    seeds: list[int] | None = Field(None, description="default: the experiment's seeds")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)


class ClassifierSystem(_SystemBase):
    """A trainable method of ``llm_aug.classifiers.registry`` (grid-searched on val)."""

    kind: Literal["classifier"] = "classifier"
    method: str
    params: dict[str, Any] = Field(default_factory=dict, description="fixed estimator parameters")
    grid: dict[str, list[Any]] | None = Field(None, description="replaces the method's search grid")

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown method {value!r}{did_you_mean(value, METHODS)}; available: {', '.join(METHODS)}")
        return value


class LLMSystem(_SystemBase, ClassifyConfig):
    """Zero-/few-shot classification by an LLM; exemplars come from its train set(s).

    Every ``llm-aug classify`` setting (prompt, shots, shot_strategy, samples, reask...) is
    a field, inherited from ``ClassifyConfig``; the seed comes from the step.
    """

    kind: Literal["llm"]
    backend: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_BACKEND))
    runner: dict[str, Any] = Field(default_factory=dict, description="RunnerConfig fields")
    limit: int | None = Field(None, ge=1, description="score only this many eval posts")

    @model_validator(mode="before")
    @classmethod
    def _no_seed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seed" in data:
            raise ValueError("an LLM system takes `seeds: [...]` (one step each), not `seed`")
        return data

    @model_validator(mode="after")
    def _valid_llm_settings(self) -> LLMSystem:
        runner = {k: v for k, v in self.runner.items() if k != "cache_path"}
        try:
            LLMConfig.model_validate({"backend": self.backend, "runner": runner})
        except ValidationError as exc:
            raise ValueError(f"LLM settings: {error_line(exc)}") from None
        return self


def _system_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "classifier"))
    return str(getattr(value, "kind", "classifier"))


System = Annotated[
    Union[Annotated[ClassifierSystem, Tag("classifier")], Annotated[LLMSystem, Tag("llm")]],
    Discriminator(_system_kind),
]


class CVSettings(_Strict):
    """Repeated stratified k-fold CV over train+val, as ``llm-aug select`` ranks methods.

    It runs once per system on the original train set (first seed), with the params the
    step chose on val; it never reads the eval split.
    """

    folds: int = Field(5, ge=2)
    repeats: int = Field(3, ge=1)
    systems: list[str] | None = Field(None, description="default: every classifier system that can be CV'd")


class ScreeningSettings(_Strict):
    """Risk screening per system with probabilities (issue 21): a profile fitted on val predictions.

    Calibration map, recall-guaranteed high-risk thresholds and conformal level sets
    (:func:`llm_aug.jobs.screening.fit_profile`) are fitted on the system's val predictions and
    applied to its eval-split predictions. When the eval split is val, val is cross-fitted
    (``folds`` stratified folds): each post is screened by a profile fitted on the other folds.
    """

    targets: list[float] = Field(default_factory=lambda: [0.9, 0.95], min_length=1,
                                 description="recall targets, 0.95 or 'recall=0.95'")
    delta: float = Field(0.1, gt=0, lt=1, description="the guarantee holds with probability >= 1 - delta")
    coverage: float = Field(0.9, gt=0, lt=1, description="target coverage of the level sets")
    calibrate: Literal["none", "sigmoid", "isotonic", "temperature"] = "temperature"
    folds: int = Field(5, ge=2, description="cross-fit folds when val is the eval split")
    systems: list[str] | None = Field(None, description="default: every system")

    @field_validator("targets", mode="before")
    @classmethod
    def _recall_targets(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for t in value:
            try:
                out.append(parse_recall_target(t))
            except ValueError as exc:
                raise ValueError(f"target {t!r}: {exc}") from None
        return out


class ExperimentConfig(_Strict):
    """The whole experiment file."""

    name: str | None = None
    data_dir: Path | None = Field(None, description="default: ../shared/data/sos1k from the repo")
    eval_split: Literal["val", "test"] = "val"
    eval_files: dict[Task, Path] = Field(default_factory=dict, description="test files (eval_split: test)")
    tasks: list[Task] = Field(default_factory=lambda: ["fine", "binary"], min_length=1)
    train_sets: dict[Task, dict[str, Path]] = Field(default_factory=dict)
    systems: list[System] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    n_boot: int = Field(1000, ge=0)
    cv: CVSettings | None = Field(None, description="CV weighted F1 over train+val per classifier system")
    screening: ScreeningSettings | None = Field(None, description="calibration, recall targets and level sets "
                                                "per system with probabilities, fitted on val")

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [s.name for s in self.systems]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate system name(s): {', '.join(dup)}")
        for task in self.tasks:
            sets = self.train_sets.get(task, {})
            # The original set comes first: every augmented set is compared against it.
            self.train_sets[task] = {ORIGINAL: sets.get(ORIGINAL, Path(task) / "train.tsv"), **sets}
        for sets in self.train_sets.values():
            for name in sets:
                if _check_name(name) == ZERO_SHOT:
                    raise ValueError(f"{ZERO_SHOT!r} is reserved; name the train set otherwise")
        known = {n for sets in self.train_sets.values() for n in sets}
        for s in self.systems:
            extra = sorted(set(s.tasks or []) - set(self.tasks))
            if extra:
                raise ValueError(f"system {s.name!r}: task(s) {', '.join(extra)} not in tasks")
            unknown = sorted(set(s.train_sets or []) - known)
            if unknown:
                raise ValueError(f"system {s.name!r}: unknown train set(s) {', '.join(unknown)}")
        self._check_cv()
        if self.screening is not None and self.screening.systems is not None:
            unknown = sorted(set(self.screening.systems) - set(names))
            if unknown:
                raise ValueError(f"screening.systems: {', '.join(unknown)} is not a system of this file")
        if self.eval_files and self.eval_split != "test":
            raise ValueError("eval_files gives the held-out test files: set eval_split: test")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        return self

    def _check_cv(self) -> None:
        if self.cv is None or self.cv.systems is None:
            return
        classifiers = {s.name: s for s in self.systems if isinstance(s, ClassifierSystem)}
        unknown = sorted(set(self.cv.systems) - set(classifiers))
        if unknown:
            raise ValueError(f"cv.systems: {', '.join(unknown)} is not a classifier system of this file")
        # Their early stopping reads val, which CV holds out in turn: compare them on val only.
        peeking = sorted(n for n in self.cv.systems if get_method(classifiers[n].method).fit_with_val)
        if peeking:
            raise ValueError(f"cv.systems: {', '.join(peeking)} early-stops on val and cannot be scored by CV")


def error_line(exc: ValidationError) -> str:
    """The first validation error as ``where: message`` (one line)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"
