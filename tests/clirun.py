"""Run the CLI in-process with typer's ``CliRunner``, for tests that need no real process.

``llm_aug.cli.main`` turns a ``UserError`` into one line on stderr and exit code 2; in
process the error is ``result.exception`` instead (exit code 1). Tests of the entry
point itself, of a killed process or of a child's environment still use a subprocess.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from typer.testing import CliRunner, Result

from llm_aug.cli import app
from llm_aug.core import progress


def invoke(*args: object, cwd: str | Path | None = None) -> Result:
    """``llm-aug --quiet ARGS`` in this process; cwd, the quiet flag and root logging are restored."""
    root, quiet, here = logging.getLogger(), progress.is_quiet(), Path.cwd()
    handlers, level = root.handlers[:], root.level
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(app, ["--quiet", *map(str, args)])
    finally:
        os.chdir(here)
        progress.set_quiet(quiet)
        root.handlers[:] = handlers
        root.setLevel(level)


def assert_ok(result: Result) -> Result:
    """Fail with the command's stderr and traceback unless it exited 0."""
    if result.exit_code != 0:
        import traceback

        tb = "".join(traceback.format_exception(*result.exc_info)) if result.exception else ""
        raise AssertionError(f"exit {result.exit_code}\n{result.stderr[-3000:]}\n{tb[-3000:]}")
    return result
