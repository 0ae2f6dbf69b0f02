"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

import typer

# A plain str on the command line, parsed into data.schemes.Task by the job, so an unknown
# task is the same one-line error (exit 2) from the CLI and from Python.
TASK = typer.Option(..., "--task", "-t", help="fine (11 levels, 0-10) or binary (0 low, 1 high).")
TEXT_COL = typer.Option("comment", "--text-col", help="Column holding the post text.")
LABEL_COL = typer.Option("myLabel", "--label-col", help="Column holding the integer label.")
ID_COL = typer.Option(None, "--id-col", help="Column holding a unique id (default: derived from the text).")
FORMAT = typer.Option(None, "--format", help="tsv, csv or jsonl (default: from the file extension).")


def load_kwargs(text_col: str, label_col: str, id_col: str | None, fmt: str | None) -> dict[str, Any]:
    """Keyword arguments for :func:`llm_aug.data.io.load_dataset` from the column options."""
    return {"text_col": text_col, "label_col": label_col, "id_col": id_col, "fmt": fmt}
