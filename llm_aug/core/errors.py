"""Error types. A ``UserError`` is shown as one line on stderr with exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input (file, option, config), not a bug."""


class DataError(UserError):
    """A data file is missing, unreadable or malformed; the message names file and line."""


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The one of ``choices`` a mistyped ``name`` most likely meant (None when none is close)."""
    choices = [str(c) for c in choices]
    text = str(name)
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.6)
    if not close:  # case slips (``TFIDF-SVM``) are typos too
        folded = {c.lower(): c for c in choices}
        close = [folded[m] for m in difflib.get_close_matches(text.lower(), list(folded), n=1, cutoff=0.6)]
    return close[0] if close else None


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the :func:`closest` of ``choices`` to ``name``, else ``""``.

    Meant to sit inside an "unknown X" message, before the list of what is available.
    """
    match = closest(name, choices)
    return f"; did you mean {match!r}?" if match else ""
