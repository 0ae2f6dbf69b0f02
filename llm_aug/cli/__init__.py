"""Command-line interface: a thin typer layer over the jobs (:mod:`llm_aug.jobs`).

Each command parses its options, calls one job and prints the result. Commands import
their job inside the function: the jobs pull in scikit-learn, torch and the LLM
runtime, and ``llm-aug --help`` should not wait for them.
"""

from __future__ import annotations

import logging
import sys

import typer

from llm_aug import __version__
from llm_aug.cli import augment as augment_cmds
from llm_aug.cli import data as data_cmds
from llm_aug.cli import experiment as experiment_cmds
from llm_aug.cli import llm as llm_cmds
from llm_aug.cli import prompts as prompt_cmds
from llm_aug.cli import models as model_cmds
from llm_aug.core.errors import UserError
from llm_aug.core.progress import set_quiet

app = typer.Typer(
    name="llm-aug",
    help="LLM-driven data augmentation, prompting and classification for suicide-risk posts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmds.app, name="data")
app.add_typer(prompt_cmds.app, name="prompts")
app.add_typer(experiment_cmds.app, name="experiment")
model_cmds.register(app)
llm_cmds.register(app)
augment_cmds.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Global options."""
    set_quiet(quiet)
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
