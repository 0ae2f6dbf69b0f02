"""Load a BERT checkpoint (local directory or hub id) and pick the device, with clear errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from llm_aug.core.errors import UserError

log = logging.getLogger(__name__)


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else that is missing is a missing directory."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or "\\" in name or name.endswith("/"))


def load_pretrained(name_or_path: str | Path, local_files_only: bool | None, num_labels: int) -> tuple[Any, Any]:
    """Model with a ``num_labels`` classification head, and its tokenizer.

    ``local_files_only=None`` means: local when ``name_or_path`` is an existing directory,
    otherwise allowed to download (from the hub cache first).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    name = str(name_or_path)
    exists = Path(name).expanduser().is_dir()
    if not exists and (isinstance(name_or_path, Path) or _looks_like_path(name)):
        raise UserError(f"BERT checkpoint directory not found: {name}")
    local = exists if local_files_only is None else bool(local_files_only)
    source = str(Path(name).expanduser()) if exists else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        # ignore_mismatched_sizes: a checkpoint fine-tuned for another label count gets a new head.
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, local_files_only=local, ignore_mismatched_sizes=True)
    except (OSError, ValueError) as exc:
        where = "offline (local_files_only)" if local else "from the Hugging Face hub or its cache"
        raise UserError(f"cannot load BERT checkpoint {name!r} {where}: {str(exc).splitlines()[0]}. "
                        "Pass a local checkpoint directory, or download it first on a machine "
                        "with internet (e.g. `hf download hfl/chinese-bert-wwm-ext`).") from exc
    return model, tokenizer


def resolve_device(device: str, precision: str, fallback_cpu: bool = False) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error unless ``fallback_cpu``."""
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        if not fallback_cpu:
            raise UserError("device='cuda' but no CUDA GPU is available (use device='auto' or 'cpu')")
        log.warning("no CUDA GPU here; loading the model on the CPU")
    chosen = torch.device("cuda" if cuda and device in ("auto", "cuda") else "cpu")
    if precision == "fp16" and chosen.type != "cuda" and not fallback_cpu:
        raise UserError("precision='fp16' needs a CUDA GPU; use 'bf16' or 'fp32' on the CPU")
    return chosen
