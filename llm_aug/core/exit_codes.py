"""The exit codes of every ``llm-aug`` command, in one table.

The commands exit with these members; every command's ``--help`` list is generated from
them by :func:`help_lines` (through ``cli.common.exit_codes``); a test checks that
README.md's "Exit codes" documents exactly these codes. Usage errors that click itself
reports (an unknown option) exit 2 as well, the same as :attr:`ExitCode.USER_ERROR`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class ExitCode(IntEnum):
    """A command's exit status; :attr:`meaning` says what it tells the caller."""

    OK = 0
    STEPS_FAILED = 1
    USER_ERROR = 2
    LEVEL_SHORT = 3
    ROWS_FAILED = 4
    REGRESSION = 5
    INTERRUPTED = 130
    TERMINATED = 128 + 15  # the shell's code for a death by SIGTERM (signal 15)

    @property
    def meaning(self) -> str:
        """One line: when a command exits with this code."""
        return _MEANINGS[self]


_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: every post (every LLM request) answered",
    ExitCode.STEPS_FAILED: "experiment run only: some steps failed (listed in OUT/run.json), the others are done",
    ExitCode.USER_ERROR: ("bad input or option, or a full disk; or the server unreachable, "
                          "or it rejected the key or model (stops at once)"),
    ExitCode.LEVEL_SHORT: "a level could not be filled (reported, never padded)",
    ExitCode.ROWS_FAILED: 'outputs written, but some rows failed: their "error" field says why',
    ExitCode.REGRESSION: ("prompts compare --fail-if-worse only: a cell is significantly worse than the "
                          "baseline (one-sided paired bootstrap, Holm, alpha 0.05); outputs written"),
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); answered posts are kept, rerun the same command to resume",
    ExitCode.TERMINATED: f"terminated (SIGTERM): the same as {int(ExitCode.INTERRUPTED)}",
}


def help_lines(codes: Mapping[ExitCode, str | None]) -> list[str]:
    """``--help`` lines (``"4    ..."``) for the codes a command can exit with, in code order.

    ``codes`` maps each code to the command's own wording, or to None for the table's.
    """
    return [f"{int(code):<5}{text if text is not None else code.meaning}"
            for code, text in sorted(codes.items())]
