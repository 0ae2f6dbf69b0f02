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
from llm_aug.cli import batch as batch_cmds
from llm_aug.cli import data as data_cmds
from llm_aug.cli import datasets as dataset_cmds
from llm_aug.cli import experiment as experiment_cmds
from llm_aug.cli import llm as llm_cmds
from llm_aug.cli import models as model_cmds
from llm_aug.cli import prompts as prompt_cmds
from llm_aug.cli import prompts_optimize
from llm_aug.cli import review as review_cmds
from llm_aug.cli import screening as screening_cmds
from llm_aug.cli.help import show_flags_as_flags
from llm_aug.cli.signals import terminate_like_interrupt, terminated
from llm_aug.core.errors import UserError
from llm_aug.core.exit_codes import ExitCode
from llm_aug.core.files import disk_full_message, is_disk_full
from llm_aug.core.progress import set_quiet

show_flags_as_flags()
app = typer.Typer(
    name="llm-aug",
    help="LLM-driven data augmentation, prompting and classification for suicide-risk posts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmds.app, name="data")
app.add_typer(prompt_cmds.app, name="prompts")
prompts_optimize.register(prompt_cmds.app)
app.add_typer(experiment_cmds.app, name="experiment")
app.add_typer(batch_cmds.app, name="batch")
model_cmds.register(app)
llm_cmds.register(app)
augment_cmds.register(app)
screening_cmds.register(app)
dataset_cmds.register(app)
review_cmds.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


# Third-party loggers that chatter at INFO/DEBUG (font lookups, dictionary loading,
# HTTP connections): held at WARNING whatever -v says.
THIRD_PARTY_LOGGERS = (
    "matplotlib", "PIL", "jieba", "urllib3", "httpx", "httpcore", "openai", "filelock", "fsspec",
    "huggingface_hub", "transformers", "sentence_transformers", "torch", "numba", "asyncio",
    "vllm", "llama_cpp",
)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so test runners capture it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _OwnBelowWarning(logging.Filter):
    """Below WARNING, pass only this package's records (third-party INFO/DEBUG stays out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.split(".")[0] == "llm_aug"


def log_level(verbose: int, quiet: bool) -> int:
    """WARNING by default and with ``--quiet``; INFO with ``-v``; DEBUG with ``-vv``."""
    if quiet or verbose <= 0:
        return logging.WARNING
    return logging.INFO if verbose == 1 else logging.DEBUG


def configure_logging(verbose: int = 0, quiet: bool = False) -> int:
    """One stderr handler on the root logger at :func:`log_level`; returns the level."""
    level = log_level(verbose, quiet)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_OwnBelowWarning())
        root.addHandler(handler)
    root.setLevel(level)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return level


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars; warnings and errors only."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More log output on stderr: -v info, -vv debug (default: warnings only)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Global options."""
    set_quiet(quiet)
    configure_logging(verbose, quiet)


def main() -> None:
    """Console entry point; exit codes as in README.md ("Exit codes").

    A user error (bad input or option, a server that cannot be reached or that rejects
    the key or model, a full disk) becomes one line on stderr and exit code 2; Ctrl-C one
    line saying how many rows are saved, and exit code 130; SIGTERM the same, exit 143.
    """
    terminate_like_interrupt()
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(ExitCode.USER_ERROR) from None
    except OSError as exc:
        if not is_disk_full(exc):  # a full disk is the user's to fix; other OS errors are bugs
            raise
        typer.echo(f"error: {disk_full_message(exc)}", err=True)
        raise SystemExit(ExitCode.USER_ERROR) from None
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except SystemExit as exc:  # typer turns Ctrl-C into exit code 130, silently
        interrupt = _interrupt_behind(exc) if exc.code == ExitCode.INTERRUPTED else None
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
    """One line on stderr, exit 130 (143 after SIGTERM); a run's interrupt
    (``RunInterrupted``) says what is saved."""
    path, saved = getattr(exc, "path", None), getattr(exc, "saved", None)
    what = "terminated (SIGTERM)" if terminated() else "interrupted"
    if path is not None:
        typer.echo(f"{what}: {saved} rows saved to {path}, rerun the same command to resume",
                   err=True)
    else:
        typer.echo(what, err=True)
    raise SystemExit(ExitCode.TERMINATED if terminated() else ExitCode.INTERRUPTED) from None
