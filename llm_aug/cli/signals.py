"""SIGTERM handled like Ctrl-C, so ``kill``, ``timeout`` and job schedulers stop a run cleanly.

The default SIGTERM action kills the process on the spot: no message, the output's lock
file left behind, results still buffered lost. With :func:`terminate_like_interrupt`
installed, SIGTERM takes Ctrl-C's path (rows saved, lock released, one line on stderr);
the CLI then exits with ``128 + 15 = 143``, the shell's code for a SIGTERM death.
"""

from __future__ import annotations

import signal
from types import FrameType

from llm_aug.core.exit_codes import ExitCode

EXIT_TERMINATED = ExitCode.TERMINATED
_received: list[int] = []


def terminate_like_interrupt() -> None:
    """Make SIGTERM interrupt the process as SIGINT would (main thread only)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def terminated() -> bool:
    """True once SIGTERM arrived in this process."""
    return bool(_received)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    # Whatever handles Ctrl-C now: asyncio.run's handler cancels the running task (the
    # runner then saves its rows); Python's default raises KeyboardInterrupt.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a job started in the background): interrupt all the same
        raise KeyboardInterrupt
