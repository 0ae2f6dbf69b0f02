"""One run per output: a lock file beside the output, holding the writer's pid.

``OUTPUT.lock`` is locked with the operating system's advisory lock (``flock``), which
the kernel drops when its process dies: the lock of a killed run (kill -9, a crash) is
stale and the next run takes it over, and a recycled pid can never keep it alive. The
pid written into the file is there to name the holder when a second run is refused.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from llm_aug.core.errors import UserError
from llm_aug.core.paths import check_writable_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

F = TypeVar("F", bound=Callable[..., Any])


class OutputLocked(UserError):
    """Another run is writing the same output."""


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of ``output``: ``OUTPUT.lock`` beside it.

    Links are resolved first, so every spelling of one output shares one lock.
    """
    output = Path(output).resolve()
    return output.with_name(output.name + ".lock")


def _try_lock(fd: int) -> bool:
    """Take the OS lock on ``fd`` without waiting; False when another open file holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # BlockingIOError (EWOULDBLOCK) or, on Windows, PermissionError
        return False
    return True


def _holder(path: Path) -> str:
    """The pid in a held lock file (a fresh holder writes it a moment after locking)."""
    for _ in range(20):
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            text = ""
        if text.isdigit():
            return f"pid {text}" + (" (this process)" if int(text) == os.getpid() else "")
        time.sleep(0.05)
    return "an unknown pid"


class OutputLock:
    """Exclusive right to write one output (file or directory) while held."""

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        self.path = lock_path(self.output)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputLocked` naming the holder's pid."""
        check_writable_dir(self.path.parent, f"output {self.output}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while self._fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                if not _try_lock(fd):
                    os.close(fd)
                    raise OutputLocked(f"{self.output} is being written by another run "
                                       f"({_holder(self.path)}); wait for it to end or choose "
                                       "another output")
                if self._is_current(fd):
                    self._fd = fd
                else:  # the file was released and removed while we opened it: try again
                    os.close(fd)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            self.release()
            raise UserError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from None

    def _is_current(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:  # removed while locked: no one can lock this file after us
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        if fcntl is None:  # pragma: no cover - Windows cannot remove an open file
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[OutputLock]:
    """Hold the lock of ``output`` for the ``with`` block (see :class:`OutputLock`)."""
    with OutputLock(output) as lock:
        yield lock


def locks_output(param: str, *, unless: str | None = None) -> Callable[[F], F]:
    """Decorate a job so it holds the lock of its output while it runs.

    ``param`` names the argument holding the output path, or an attribute of an
    argument (``"cfg.out"``). With ``unless``, the name of a boolean argument (e.g.
    ``dry_run``), no lock is taken when that argument is true.
    """
    name, *attributes = param.split(".")

    def decorate(job: F) -> F:
        signature = inspect.signature(job)

        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            if unless is not None and bound.arguments.get(unless):
                return job(*args, **kwargs)
            output = functools.reduce(getattr, attributes, bound.arguments[name])
            with output_lock(output):
                return job(*args, **kwargs)
        return run  # type: ignore[return-value]
    return decorate
