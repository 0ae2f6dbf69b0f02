"""Command-line interface: a thin typer layer over the jobs (:mod:`llm_aug.jobs`).

Each command parses its options, calls one job and prints the result. Commands import
their job inside the function: the jobs pull in scikit-learn, torch and the LLM
runtime, and ``llm-aug --help`` should not wait for them.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

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
    """Console entry point; exit codes as in README.md ("Exit codes").

    A user error (bad input or option, a server that cannot be reached or that rejects
    the key or model) becomes one line on stderr and exit code 2; Ctrl-C one line saying
    how many rows are saved, and exit code 130.
    """
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except SystemExit as exc:  # typer turns Ctrl-C into exit code 130, silently
        interrupt = _interrupt_behind(exc) if exc.code == 130 else None
        if interrupt is None:
            raise
        _interrupted(interrupt)


def _interrupt_behind(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that ``exc`` was raised from or while handling, if any."""
    for _ in range(10):
        if exc is None or isinstance(exc, KeyboardInterrupt):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """One line on stderr, exit 130; a run's interrupt (``RunInterrupted``) says what is saved."""
    path, saved = getattr(exc, "path", None), getattr(exc, "saved", None)
    if path is not None:
        typer.echo(f"interrupted: {saved} rows saved to {path}, rerun the same command to resume",
                   err=True)
    else:
        typer.echo("interrupted", err=True)
    raise SystemExit(130) from None
