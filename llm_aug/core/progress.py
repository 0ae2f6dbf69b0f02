"""Progress display shared by all commands, with one switch to turn it off."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_QUIET = {"value": os.environ.get("LLM_AUG_QUIET", "") not in ("", "0")}


def set_quiet(quiet: bool) -> None:
    """Turn progress bars off (``--quiet``) or back on."""
    _QUIET["value"] = quiet


def is_quiet() -> bool:
    return _QUIET["value"]


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a progress bar with rate and ETA on stderr, unless quiet."""
    return iter(tqdm(items, desc=desc, total=total, disable=is_quiet(), leave=False))
