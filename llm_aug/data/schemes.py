"""Label schemes loaded from the YAML files shipped under ``prompts/schemes``."""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from llm_aug.core.errors import UserError, did_you_mean


class Task(str, Enum):
    """The two SOS-1K tasks; a ``str`` so ``Task.FINE == "fine"`` and it serialises as its value."""

    FINE = "fine"
    BINARY = "binary"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, value: "Task | str") -> "Task":
        """``value`` as a Task; a one-line UserError when it is none."""
        try:
            return cls(value)
        except ValueError:
            names = [t.value for t in cls]
            raise UserError(f"unknown task {value!r}{did_you_mean(value, names)}; "
                            f"use one of: {', '.join(names)}") from None


TASK_TO_SCHEME = {Task.FINE: "sos11", Task.BINARY: "binary"}


class Level(BaseModel):
    """One label of a scheme."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: int
    name_en: str
    name_zh: str
    definition_en: str
    definition_zh: str


class LabelScheme(BaseModel):
    """An ordered set of integer labels with names and definitions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    task: str
    description_zh: str
    description_en: str
    ordinal: bool
    binary_threshold: int | None = None
    levels: tuple[Level, ...]

    @property
    def labels(self) -> list[int]:
        return [lv.id for lv in self.levels]

    @property
    def title(self) -> str:
        """A reader's name for page titles: ``fine (11 levels)``, ``binary (low risk / high risk)``."""
        if self.ordinal or len(self.levels) > 3:
            return f"{self.task} ({len(self.levels)} levels)"
        return f"{self.task} ({' / '.join(lv.name_en for lv in self.levels)})"

    def name_of(self, label: int, lang: str = "en") -> str:
        """Short name of ``label`` in ``lang`` ('en' or 'zh')."""
        for lv in self.levels:
            if lv.id == label:
                return lv.name_zh if lang == "zh" else lv.name_en
        raise KeyError(label)

    def __contains__(self, label: object) -> bool:
        return label in self.labels


def _scheme_dir() -> Path:
    return Path(str(resources.files("llm_aug.prompts").joinpath("schemes")))


def available_schemes() -> list[str]:
    """Names of the schemes shipped with the package."""
    return sorted(p.stem for p in _scheme_dir().glob("*.yaml"))


@lru_cache(maxsize=None)
def load_scheme(name_or_path: str) -> LabelScheme:
    """Load a scheme by name (``sos11``, ``binary``), task (``fine``) or YAML path."""
    name = TASK_TO_SCHEME.get(name_or_path, name_or_path)
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = _scheme_dir() / f"{name}.yaml"
    if not path.exists():
        raise UserError(
            f"unknown label scheme {name_or_path!r}{did_you_mean(name_or_path, available_schemes())}; "
            f"available: {', '.join(available_schemes())}"
        )
    with path.open(encoding="utf-8") as fh:
        return LabelScheme.model_validate(yaml.safe_load(fh))


def scheme_for_task(task: Task | str) -> LabelScheme:
    """The scheme of a task: ``fine`` -> sos11, ``binary`` -> binary."""
    return load_scheme(TASK_TO_SCHEME[Task.parse(task)])
