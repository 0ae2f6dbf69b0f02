"""Help-screen fix-ups for typer's rich help."""

from __future__ import annotations

from typing import Any, Optional

import typer


def show_flags_as_flags() -> None:
    """Help screens: flags shown bare (no ``<bool>``), repeatable values as ``<str>`` (not ``<list[str]>``).

    typer's rich help (``typer.rich_utils`` via ``TyperOption.display_type_rich``) prints
    a value type beside every option, so ``--json``, ``--dry-run`` and ``--help`` read as
    if they took a ``<bool>`` value; its plain help already leaves flags bare. Applied
    once, for every command of the CLI (called by the root app at start-up); a typer
    without that method (older releases print no type for flags) is left alone.
    """
    core = getattr(typer, "core", None)
    for cls_name in ("TyperOption", "TyperArgument"):
        _patch_display_type(getattr(core, cls_name, None))


def _patch_display_type(cls: Any) -> None:
    shown = getattr(cls, "display_type_rich", None)
    if shown is None or getattr(shown, "llm_aug_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> Optional[str]:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        text = shown(self, ctx)
        if isinstance(text, str) and text.startswith("<list[") and text.endswith("]>"):
            return "<" + text[len("<list["):-len("]>")] + ">"  # repeatable: one value each time
        return text

    display_type_rich.llm_aug_flags = True  # type: ignore[attr-defined]
    cls.display_type_rich = display_type_rich
