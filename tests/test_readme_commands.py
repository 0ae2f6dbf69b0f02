"""Every ``llm-aug`` command in README.md's bash blocks parses against the real CLI.

The arguments are parsed by click exactly as on the command line (``make_context``,
no ``resilient_parsing``) without running the command, so an option renamed or
removed in the CLI, a missing required option or a bad value type fails here.
Paths need not exist: no option of the CLI checks existence at parse time.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from llm_aug.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
SEPARATORS = {"&&", "||", ";", "|"}
# click's UsageError, from whichever click typer uses (recent typers vendor their own).
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fenced blocks."""
    return re.findall(r"^```bash[ \t]*\n(.*?)^```", text, flags=re.S | re.M)


def logical_lines(block: str) -> list[str]:
    """Lines with backslash continuations joined."""
    lines, current = [], ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return lines


def llm_aug_commands(text: str) -> list[list[str]]:
    """The argument lists of every ``llm-aug`` (or ``.venv/bin/llm-aug``) call, comments stripped."""
    found = []
    for block in bash_blocks(text):
        for line in logical_lines(block):
            tokens = shlex.split(line, comments=True)
            segment: list[str] = []
            for token in [*tokens, ";"]:
                if token not in SEPARATORS:
                    segment.append(token)
                    continue
                if segment and Path(segment[0]).name == "llm-aug":
                    found.append(segment[1:])
                segment = []
    return found


COMMANDS = llm_aug_commands(README.read_text(encoding="utf-8"))


def parse(args: list[str]) -> Any:
    """Parse ``llm-aug ARGS`` down to the leaf command; return the leaf's context. Runs nothing."""
    command = get_command(app)
    ctx = command.make_context("llm-aug", list(args), resilient_parsing=False)
    while getattr(command, "commands", None):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            raise UsageError("missing command", ctx)
        name, rest = rest[0], rest[1:]
        sub = command.commands.get(name)
        if sub is None:
            raise UsageError(f"no such command {name!r}", ctx)
        command, ctx = sub, sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
    if ctx.args:
        raise UsageError(f"unexpected arguments {ctx.args}", ctx)
    return ctx


def test_readme_commands_are_found():
    names = {args[0] for args in COMMANDS if args}
    assert len(COMMANDS) >= 20, COMMANDS
    assert {"train", "predict", "evaluate", "compare", "classify", "augment", "data", "prompts",
            "experiment", "demo"} <= names


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[:80] for a in COMMANDS])
def test_readme_command_parses(args):
    try:
        parse(args)
    except UsageError as exc:
        pytest.fail(f"README: llm-aug {' '.join(args)}\n  {exc.format_message()}")


@pytest.mark.parametrize("args", [
    ["evaluate", "p.jsonl", "--gold", "val.tsv", "--no-such-option"],
    ["evaluate", "p.jsonl"],                                     # --gold is required
    ["train", "--task", "fine", "--train", "a", "--val", "b", "--out", "c", "--seed", "x"],
    ["data", "no-such-command"],
])
def test_parse_rejects_what_the_cli_rejects(args):
    with pytest.raises(UsageError):
        parse(args)


def test_extraction_joins_continuations_and_strips_comments():
    text = ("```bash\n# a comment\nllm-aug evaluate p.jsonl \\\n  --gold val.tsv   # note\n"
            "python3 -m venv .venv && .venv/bin/llm-aug demo --out runs/demo\n```\n"
            "```python\nllm-aug not bash\n```\n")
    assert llm_aug_commands(text) == [["evaluate", "p.jsonl", "--gold", "val.tsv"], ["demo", "--out", "runs/demo"]]
