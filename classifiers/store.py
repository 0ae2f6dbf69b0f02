"""Save and load trained model directories (model + label scheme + config)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_binary, atomic_write_text
from llm_aug.data.schemes import LabelScheme, load_scheme

MODEL_FILE, CONFIG_FILE, SCHEME_FILE = "model.pkl", "config.json", "scheme.json"


def save_model(out_dir: Path, estimator: Any, scheme: LabelScheme, config: dict) -> None:
    """Write the pickled estimator, its scheme and its config into ``out_dir``.

    Each file is written whole or not at all, the model last: a directory holding
    ``model.pkl`` (what :func:`load_model` looks for) is complete.
    """
    atomic_write_text(out_dir / SCHEME_FILE, scheme.model_dump_json(indent=2))
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False))
    atomic_write_binary(out_dir / MODEL_FILE,
                        lambda fh: pickle.dump(estimator, fh, protocol=pickle.HIGHEST_PROTOCOL))


def load_model(model_dir: str | Path) -> tuple[Any, LabelScheme, dict]:
    """Load what :func:`save_model` wrote; clear errors when the directory is not a model."""
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_FILE).is_file():
        raise UserError(f"{model_dir}: not a model directory (no {MODEL_FILE}); train one with `llm-aug train`")
    config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    scheme_path = model_dir / SCHEME_FILE
    scheme = (LabelScheme.model_validate_json(scheme_path.read_text(encoding="utf-8"))
              if scheme_path.is_file() else load_scheme(config["scheme"]))
    with (model_dir / MODEL_FILE).open("rb") as fh:
        estimator = pickle.load(fh)  # noqa: S301 - our own model directory
    return estimator, scheme, config
