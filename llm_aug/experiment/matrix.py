"""The step matrix (tasks x systems x train sets x seeds) and each step's cache key."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from llm_aug import __version__
from llm_aug.classifiers.registry import get_method
from llm_aug.core.files import file_sha256
from llm_aug.experiment.config import ORIGINAL, ZERO_SHOT, ClassifierSystem, ExperimentConfig, LLMSystem
from llm_aug.experiment.resolve import ResolvedConfig
from llm_aug.experiment.screening_step import settings_for
from llm_aug.experiment.step import Step, classify_config
from llm_aug.experiment.train_filter import filter_split
from llm_aug.prompting import load_prompt

# Bump when a change of the key's layout makes old cached steps wrong; code edits are
# covered by the source digest.
KEY_VERSION = 2
# What the source digest reads: the library's code, prompt templates and label schemes.
_SOURCE_SUFFIXES = {".py", ".jinja", ".yaml"}
# Fields that pick which steps exist, not what a step computes (an LLM system's `seed` is
# unused: the step's seed is hashed on its own).
_SELECTION_FIELDS = {"name", "tasks", "train_sets", "seeds", "seed"}


def _train_sets(system: ClassifierSystem | LLMSystem, available: dict[str, Path]) -> list[str]:
    if isinstance(system, LLMSystem) and not system.shots:
        return [ZERO_SHOT]
    wanted = system.train_sets
    if wanted is None:
        # An LLM reads only a few exemplars: by default from the original training set.
        wanted = [ORIGINAL] if isinstance(system, LLMSystem) else list(available)
    return [name for name in wanted if name in available]


def _cv_for(system: ClassifierSystem | LLMSystem, cfg: ExperimentConfig) -> dict[str, int] | None:
    """The CV settings for this system's original-set step, if CV applies to it."""
    if cfg.cv is None or not isinstance(system, ClassifierSystem):
        return None
    if cfg.cv.systems is None:
        # Early stopping on val would peek at the held-out fold: such methods compare on val only.
        if get_method(system.method).fit_with_val:
            return None
    elif system.name not in cfg.cv.systems:
        return None
    return {"folds": cfg.cv.folds, "repeats": cfg.cv.repeats}


def expand(res: ResolvedConfig) -> list[Step]:
    """Every step of the experiment, in config order (task, system, train set, seed)."""
    cfg = res.config
    steps = []
    for task in cfg.tasks:
        available = res.train_files.get(task, {})
        for system in cfg.systems:
            if system.tasks is not None and task not in system.tasks:
                continue
            seeds = system.seeds or cfg.seeds
            for name in _train_sets(system, available):
                for seed in seeds:
                    cv = _cv_for(system, cfg) if name == ORIGINAL and seed == seeds[0] else None
                    steps.append(Step(task, system, name, available.get(name), seed, cv))
    return steps


def select(steps: list[Step], pattern: str | None) -> list[bool]:
    """Which steps ``pattern`` picks: a glob on the step id, or any comma-separated glob."""
    if not pattern:
        return [True] * len(steps)
    globs = [p.strip() for p in pattern.split(",") if p.strip()]
    return [any(fnmatch.fnmatchcase(s.id, g) or fnmatch.fnmatchcase(s.id, f"*{g}*")
                for g in globs) for s in steps]


class FileHashes:
    """sha256 of data files, each computed once per run."""

    def __init__(self) -> None:
        self._seen: dict[Path, str] = {}

    def __call__(self, path: Path | None) -> str | None:
        if path is None:
            return None
        if path not in self._seen:
            self._seen[path] = file_sha256(path)
        return self._seen[path]


def _prompt_sha(step: Step) -> str | None:
    if not isinstance(step.system, LLMSystem):
        return None
    return load_prompt(classify_config(step).prompt_name(step.task)).sha256


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 of every source file of the installed package (llm_aug and its sub-packages).

    Part of each step's key, so results computed by older code are recomputed rather
    than reported as if this code had produced them.
    """
    import llm_aug
    import llm_aug.classifiers
    import llm_aug.eval
    import llm_aug.prompts

    roots = sorted({Path(m.__file__).resolve().parent
                    for m in (llm_aug, llm_aug.classifiers, llm_aug.eval, llm_aug.prompts)})
    files = {f for root in roots for f in root.rglob("*")
             if f.is_file() and f.suffix in _SOURCE_SUFFIXES and "__pycache__" not in f.parts}
    digest = hashlib.sha256()
    for f in sorted(files):
        # Relative names: the same code installed elsewhere gives the same digest.
        name = next(str(f.relative_to(r)) for r in reversed(roots) if f.is_relative_to(r))
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def key_inputs(step: Step, res: ResolvedConfig, hashes: FileHashes) -> dict[str, Any]:
    """Everything a step's result depends on (and nothing that only names it).

    A screened step adds its screening settings (other steps keep their keys).
    """
    inputs = {
        "key_version": KEY_VERSION,
        "llm_aug": __version__,
        "source_sha256": source_digest(),
        "task": step.task,
        "system": step.system.model_dump(mode="json", exclude=_SELECTION_FIELDS),
        "seed": step.seed,
        "train_sha256": hashes(step.train_path),
        "val_sha256": hashes(res.val_files[step.task]),
        "eval_sha256": hashes(res.eval_files[step.task]),
        "train_filtered_against_eval": filter_split(res.config.eval_split),
        "binary_gold_sha256": hashes(res.binary_gold.get(step.task)),
        "prompt_sha256": _prompt_sha(step),
        "n_boot": res.config.n_boot,
        "cv": step.cv,
    }
    screening = settings_for(step, res.config)
    if screening is not None:
        inputs["screening"] = {**screening.model_dump(mode="json", exclude={"systems"}),
                               "eval_split": res.config.eval_split}
    return inputs


def step_key(step: Step, res: ResolvedConfig, hashes: FileHashes) -> str:
    """sha256 of :func:`key_inputs` (canonical JSON)."""
    blob = json.dumps(key_inputs(step, res, hashes), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
