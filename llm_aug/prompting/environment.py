"""The Jinja2 environment of prompt templates: strict, and every interpolation made inert.

Filters and globals the templates use: ``text_of`` and ``label_of`` (exemplars given
as Rows, dicts or strings) and ``level_of(scheme, label)``.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2

from llm_aug.core.errors import UserError

# '<' opening anything tag-like ('<post>', '</ post', '<|user|>') in interpolated data.
_TAG_OPEN_RE = re.compile(r"<(?=\s*/?\s*[A-Za-z|])")


def neutralise(value: Any) -> str:
    """Make interpolated data inert: tag-like ``<`` and role markers become full-width.

    Applied to every ``{{ ... }}`` output, so a post containing ``</post>`` or
    ``<|system|>`` cannot close the data block or start a new message.
    """
    text = str(value)
    # Most values hold neither character: skip the regex and the copy (same result).
    if "<" in text:
        text = _TAG_OPEN_RE.sub("＜", text)
    if "|>" in text:
        text = text.replace("|>", "|＞")
    return text


def _text_of(item: Any) -> str:
    """Text of an exemplar given as a Row, a dict or a plain string."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item["text"])
    return str(item.text)


def _label_of(item: Any) -> int:
    """Label of an exemplar (Row or dict); an unlabelled exemplar is a caller error."""
    label = item["label"] if isinstance(item, dict) else getattr(item, "label", None)
    if label is None:
        raise UserError(f"exemplar without a label: {_text_of(item)[:30]!r}")
    return int(label)


def _level_of(scheme: Any, label: int) -> Any:
    """The scheme's Level with id ``label``; an unknown level is a caller error."""
    for lv in scheme.levels:
        if lv.id == label:
            return lv
    raise UserError(f"level {label!r} is not in scheme {scheme.name!r} (labels {scheme.labels})")


def environment() -> jinja2.Environment:
    """StrictUndefined, trimmed blocks, no autoescape (chat text), ``neutralise`` on every output."""
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
        finalize=neutralise,
    )
    env.filters.update(text_of=_text_of, label_of=_label_of)
    env.globals.update(level_of=_level_of)
    return env
