"""Progress display shared by all commands, with one switch to turn it off.

Bars go to stderr and are off under ``--quiet`` or ``LLM_AUG_QUIET=1`` (the variable
wins over a missing ``--quiet``: ``set_quiet(False)`` does not turn bars back on while
it is set).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


def env_quiet() -> bool:
    """Whether ``LLM_AUG_QUIET`` asks for no progress bars."""
    return os.environ.get("LLM_AUG_QUIET", "") not in ("", "0")


_QUIET = {"value": env_quiet()}


def set_quiet(quiet: bool) -> None:
    """Turn progress bars off (``--quiet``) or back on (unless ``LLM_AUG_QUIET`` is set)."""
    _QUIET["value"] = bool(quiet) or env_quiet()


def is_quiet() -> bool:
    return _QUIET["value"]


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap ``items`` in a progress bar with rate and ETA on stderr, unless quiet."""
    from tqdm.auto import tqdm  # here, not at the top: the CLI imports this module for --quiet

    return iter(tqdm(items, desc=desc, total=total, unit=unit, disable=is_quiet(), leave=False,
                     file=sys.stderr))


@contextmanager
def progress_bar(total: int, desc: str, unit: str = "it") -> Iterator[Any]:
    """A bar of ``total`` units on stderr (off when quiet); call ``.update(n)`` per finished chunk.

    For work done in batches: advance by the batch's size, so the bar counts items
    (posts), not batches, and its ETA follows the real work.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=is_quiet(), leave=False, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()
