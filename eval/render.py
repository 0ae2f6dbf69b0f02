"""The one renderer of report pages: Jinja2 templates shipped in ``llm_aug/eval/templates``.

Every Markdown and HTML page the toolkit writes (``compare``, ``experiment report``,
``augment``) is ``render(template_name, **data)``: the caller computes the data (tables
as strings, PNG bytes, notes) and the template lays it out; nothing edits rendered text.

* ``*.html.jinja`` templates extend ``base.html.jinja`` (one style, one header, a
  CJK-capable font stack) and are autoescaped: post text can never become markup.
* ``*.md.jinja`` templates are not escaped; table cells go through ``md_cell``.
* Every template is strict (:class:`jinja2.StrictUndefined`): a missing key fails.

Filters: ``md_cell`` (escape ``|`` for a Markdown table cell), ``md_table`` (a
``(header, rows)`` table as Markdown lines) and ``data_uri`` (PNG bytes as a ``data:``
URI, so a page stays self-contained).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).with_name("templates")
# Chinese post text must render with a CJK font wherever the page is opened.
FONT_STACK = ('"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
              '"WenQuanYi Zen Hei", sans-serif')
HTML_SUFFIX = ".html.jinja"


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI, so the HTML page stays self-contained."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def md_cell(value: Any) -> str:
    """A Markdown table cell: ``|`` escaped so it cannot split the cell."""
    return str(value).replace("|", "\\|")


def md_table(table: tuple[Sequence[Any], Sequence[Sequence[Any]]]) -> str:
    """A ``(header, rows)`` table as Markdown lines (no trailing newline), cells escaped."""
    head, rows = table
    lines = ["| " + " | ".join(md_cell(c) for c in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _autoescape(name: str | None) -> bool:
    return bool(name) and str(name).endswith(HTML_SUFFIX)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: strict, trimmed blocks, HTML templates autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md_cell=md_cell, md_table=md_table, data_uri=png_uri)
    env.globals.update(font_stack=FONT_STACK)
    return env


def render(template_name: str, **data: Any) -> str:
    """Render ``templates/<template_name>`` with ``data``; a key the template uses but
    ``data`` lacks raises :class:`jinja2.UndefinedError`."""
    return environment().get_template(template_name).render(**data)


def page_templates() -> list[str]:
    """Names of the page templates (partials start with ``_``; ``base`` is only extended)."""
    return sorted(p.name for p in TEMPLATE_DIR.glob("*.jinja")
                  if not p.name.startswith("_") and not p.name.startswith("base."))
