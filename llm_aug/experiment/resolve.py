"""Read an experiment file and resolve its data paths (checked to exist before any work)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from llm_aug.core.errors import UserError
from llm_aug.experiment.config import ExperimentConfig, error_line

DATA_DIR_ENV = "LLM_AUG_DATA_DIR"
CORPUS_FILE = "corpus.tsv"  # what `llm-aug augment` writes into its output folder
CORPUS_FILES = (CORPUS_FILE, "corpus.parquet")  # ... or this, with --format parquet


@dataclass
class ResolvedConfig:
    """A validated config plus absolute paths of every file the matrix reads."""

    config: ExperimentConfig
    path: Path
    name: str
    data_dir: Path
    val_files: dict[str, Path] = field(default_factory=dict)
    eval_files: dict[str, Path] = field(default_factory=dict)
    train_files: dict[str, dict[str, Path]] = field(default_factory=dict)
    # Fine-level systems are also scored collapsed to high/low against the binary labels.
    binary_gold: dict[str, Path] = field(default_factory=dict)


def repo_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding pyproject.toml or .git (else ``start``)."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return start


def default_data_dir(config_path: Path) -> Path:
    """``$LLM_AUG_DATA_DIR``, else ``../shared/data/sos1k`` beside the config file's repo."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return repo_root(config_path.resolve().parent).parent / "shared" / "data" / "sos1k"


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _must_exist(path: Path, what: str, where: Path) -> Path:
    if path.is_dir():
        path = next((path / name for name in CORPUS_FILES if (path / name).is_file()), path)
    if not path.is_file():
        raise UserError(f"{where}: {what}: file not found: {path}")
    return path.resolve()


def resolve(config: ExperimentConfig, path: Path, data_dir: str | Path | None = None) -> ResolvedConfig:
    """Absolute paths of every data file; a missing one is a ``UserError`` naming it."""
    if data_dir is not None:
        base = Path(data_dir).expanduser()
    elif config.data_dir is not None:
        # Relative to the repo holding the config, like the default (configs live in experiments/).
        base = _under(repo_root(path.resolve().parent), config.data_dir)
    else:
        base = default_data_dir(path)
    res = ResolvedConfig(config, path, config.name or path.stem, base.resolve())
    for task in config.tasks:
        res.val_files[task] = _must_exist(base / task / "val.tsv", f"{task} val split", path)
        given = config.eval_files.get(task)
        eval_path = _under(base, given) if given else base / task / f"{config.eval_split}.tsv"
        res.eval_files[task] = _must_exist(eval_path, f"{task} eval split", path)
        res.train_files[task] = {name: _must_exist(_under(base, p), f"train set {name!r} ({task})", path)
                                 for name, p in config.train_sets.get(task, {}).items()}
    binary = base / "binary" / f"{config.eval_split}.tsv"
    if "fine" in config.tasks and not config.eval_files.get("fine") and binary.is_file():
        res.binary_gold["fine"] = binary.resolve()
    return res


def load_config(path: str | Path, data_dir: str | Path | None = None,
                eval_split: str | None = None) -> ResolvedConfig:
    """Read, validate and resolve an experiment file; every problem is one ``UserError`` line.

    ``data_dir`` and ``eval_split`` override the file (``eval_split="test"`` is for final scoring).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: experiment config not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    if eval_split is not None:
        raw["eval_split"] = eval_split
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{path}: {error_line(exc)}") from None
    return resolve(config, path, data_dir)
