"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import typer

from llm_aug.core.exit_codes import ExitCode, help_lines

F = TypeVar("F", bound=Callable[..., Any])
EXIT_CODES_SLOT = "{exit_codes}"

# A plain str on the command line, parsed into data.schemes.Task by the job, so an unknown
# task is the same one-line error (exit 2) from the CLI and from Python.
TASK = typer.Option(..., "--task", "-t", help="fine (11 levels, 0-10) or binary (0 low, 1 high).")
TEXT_COL = typer.Option("comment", "--text-col", help="Column holding the post text.")
LABEL_COL = typer.Option("myLabel", "--label-col", help="Column holding the integer label.")
ID_COL = typer.Option(None, "--id-col", help="Column holding a unique id (default: derived from the text).")
FORMAT = typer.Option(None, "--format", help="tsv, csv, jsonl or parquet (default: from the file extension).")
OUTPUT_FORMAT = typer.Option(None, "--output-format", help="Predictions as jsonl or parquet (default: from --output's extension, .parquet or not; the two must agree).")


#: What every command can exit with: done, bad input, Ctrl-C, SIGTERM (None: the table's
#: wording; its 2 also names the LLM server, which these commands do not call). Commands
#: that can also exit 1, 3 or 4 add those.
COMMON_EXIT_CODES: dict[ExitCode, str | None] = {
    ExitCode.OK: "done", ExitCode.USER_ERROR: "bad input or option, or a full disk (one line on stderr says which)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)", ExitCode.TERMINATED: None}


def load_kwargs(text_col: str, label_col: str, id_col: str | None, fmt: str | None) -> dict[str, Any]:
    """Keyword arguments for :func:`llm_aug.data.io.load_dataset` from the column options."""
    return {"text_col": text_col, "label_col": label_col, "id_col": id_col, "fmt": fmt}


def exit_codes(codes: Mapping[ExitCode, str | None]) -> Callable[[F], F]:
    """Fill the ``{exit_codes}`` line of a command's docstring from the exit-code table.

    ``codes`` as for :func:`llm_aug.core.exit_codes.help_lines`: the codes the command
    exits with, each with its own wording or None. Apply it below ``with_llm_options``
    (which copies the docstring).
    """
    def fill(command: F) -> F:
        lines = (command.__doc__ or "").split("\n")
        at = next((i for i, line in enumerate(lines) if line.strip() == EXIT_CODES_SLOT), None)
        if at is None:
            raise ValueError(f"{command.__name__}: docstring has no {EXIT_CODES_SLOT} line")
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines[at:at + 1] = [indent + line for line in help_lines(codes)]
        command.__doc__ = "\n".join(lines)
        return command
    return fill
