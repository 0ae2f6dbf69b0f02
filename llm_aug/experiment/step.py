"""One cell of the experiment matrix, what a step that cannot run raises, and an LLM step's settings.

Below both :mod:`~llm_aug.experiment.matrix` (which keys steps) and the step runners
(:mod:`~llm_aug.experiment.llm_step`, :mod:`~llm_aug.experiment.classifier_step`), so
neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm_aug.experiment.config import ORIGINAL, ZERO_SHOT, ClassifierSystem, LLMSystem
from llm_aug.prompting.classify import ClassifyConfig


@dataclass(frozen=True, eq=False)
class Step:
    """One cell of the matrix: a system trained on one train set with one seed, for one task."""

    task: str
    system: ClassifierSystem | LLMSystem
    train_set: str
    train_path: Path | None
    seed: int
    cv: dict[str, int] | None = None  # {folds, repeats}: also score by CV over train+val

    @property
    def id(self) -> str:
        """``task/system/train_set/sN``: the results folder and what ``--only`` matches."""
        return f"{self.task}/{self.system.name}/{self.train_set}/s{self.seed}"

    @property
    def label(self) -> str:
        """The system's name in reports: system, plus the train set when it is not the original."""
        if self.train_set in (ORIGINAL, ZERO_SHOT):
            return self.system.name
        return f"{self.system.name} @ {self.train_set}"


class StepSkipped(Exception):
    """A step that cannot run here (e.g. its LLM backend is unavailable); recorded, not fatal."""


def llm_system(step: Step) -> LLMSystem:
    """The step's system, which must be an LLM system."""
    assert isinstance(step.system, LLMSystem)
    return step.system


def classify_config(step: Step) -> ClassifyConfig:
    """The ``classify`` settings of an LLM step (its seed drives sampling and exemplars)."""
    s = llm_system(step)
    fields = {k: getattr(s, k) for k in ClassifyConfig.model_fields if k != "seed"}
    return ClassifyConfig(**fields, seed=step.seed)
