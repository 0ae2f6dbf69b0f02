"""The review log: one JSON line per decision in ``RUN/review.jsonl``, on disk before it is acknowledged.

Each :meth:`ReviewLog.append` writes its line with one ``write`` and ``os.fsync`` before
returning, so a crash, a killed server or a closed tab loses no decision the reviewer
saw accepted. The log is append-only: a later decision on the same row by the same
reviewer supersedes the earlier one (:func:`latest`), nothing is ever rewritten.

A process killed in the middle of a write can leave a torn last line (no newline, cut
JSON). :meth:`ReviewLog.read` warns about it and skips it; the next append starts on a
fresh line, so the torn bytes never glue onto a good decision. A torn line is recognised
by what a cut write looks like (invalid JSON not ending in ``}``); any other bad line is
a :class:`~llm_aug.core.errors.UserError` naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from llm_aug.core.errors import UserError
from llm_aug.core.files import DiskFull, disk_full_message, is_disk_full

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the thread lock alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

REVIEW_FILE = "review.jsonl"
DECISIONS = ("accept", "reject", "relabel", "skip")
REJECT_REASONS: tuple[str, ...] = ("wrong level", "implausible", "harmful or instructive",
                                   "identifying details", "near copy", "off topic", "other")
MAX_REVIEWER = 64


def now_utc() -> str:
    """The current time as ISO 8601 UTC, to the second (``2026-12-03T18:30:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Decision(BaseModel):
    """One reviewer's verdict on one synthetic row.

    ``level``: the level the reviewer assigns (accept: the row's intended level; relabel:
    the new one; reject and skip: None). ``reason``: one of :data:`REJECT_REASONS` for a
    reject, None otherwise. That ``level`` fits the row is checked against the run by
    :meth:`llm_aug.jobs.review.items.ReviewRun.check`.
    """

    model_config = ConfigDict(extra="forbid")
    row_id: str
    decision: Literal["accept", "reject", "relabel", "skip"]
    level: int | None = None
    reason: str | None = None
    reviewer: str
    time: str = ""

    @field_validator("row_id")
    @classmethod
    def _row_id(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("row id is empty")
        return v

    @field_validator("reviewer")
    @classmethod
    def _reviewer(cls, v: str) -> str:
        v = v.strip()
        if not 1 <= len(v) <= MAX_REVIEWER:
            raise ValueError(f"reviewer name must be 1 to {MAX_REVIEWER} characters")
        if any(unicodedata.category(c).startswith("C") for c in v):
            raise ValueError("reviewer name must not hold control characters")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not v:
            return v
        try:
            when = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"time {v!r} is not an ISO 8601 time") from None
        # the log is in UTC: a time without a zone is taken as UTC, one with a zone converted
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()

    @model_validator(mode="after")
    def _consistent(self) -> "Decision":
        if self.decision in ("accept", "relabel") and self.level is None:
            raise ValueError(f"{self.decision} needs a level")
        if self.decision in ("reject", "skip") and self.level is not None:
            raise ValueError(f"{self.decision} takes no level")
        if self.decision == "reject" and self.reason not in REJECT_REASONS:
            got = f"got {self.reason!r}" if self.reason else "none given"
            raise ValueError(f"reject needs a reason, one of: {', '.join(REJECT_REASONS)} ({got})")
        if self.decision != "reject" and self.reason is not None:
            raise ValueError(f"{self.decision} takes no reason (only reject does)")
        return self


def _message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def parse_decision(data: Mapping[str, Any]) -> Decision:
    """A :class:`Decision` from JSON data (a request body); a readable ``UserError`` when invalid."""
    try:
        return Decision.model_validate(dict(data))
    except ValidationError as exc:
        raise UserError(f"invalid decision: {_message(exc)}") from None


class ReviewLog:
    """``review.jsonl``: append decisions (durably, from any thread), read them back in order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, decision: Decision) -> Decision:
        """Write one decision (time filled in when empty), fsync'd before returning it."""
        if not decision.time:
            decision = decision.model_copy(update={"time": now_utc()})
        line = (json.dumps(decision.model_dump(mode="json"), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                if fcntl is not None:  # another process (a second server) appending to the same log
                    fcntl.flock(fd, fcntl.LOCK_EX)
                _write_all(fd, _fresh_line(fd) + line)
                os.fsync(fd)
            except OSError as exc:
                if is_disk_full(exc):  # what was written is a torn line: skipped on read, the next append fresh
                    raise DiskFull(f"decision not saved: {disk_full_message(exc, self.path)}") from None
                raise
            finally:
                os.close(fd)  # closing drops the flock too
            if created:
                _fsync_dir(self.path.parent)
        return decision

    def read(self) -> list[Decision]:
        """Every decision in log order; a torn line (a write cut by a crash) is warned about and skipped."""
        if not self.path.is_file():
            return []
        with self._lock:
            data = self.path.read_bytes()
        lines = data.split(b"\n")
        last = max((n for n, raw in enumerate(lines, start=1) if raw.strip()), default=0)
        out: list[Decision] = []
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            decision = self._parse(raw, n, last=n == last)
            if decision is not None:
                out.append(decision)
        return out

    def _parse(self, raw: bytes, n: int, *, last: bool) -> Decision | None:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if last or not raw.rstrip().endswith(b"}"):
                log.warning("%s:%d: torn line (a write cut short by a crash) skipped", self.path, n)
                return None
            raise UserError(f"{self.path}:{n}: not a JSON line ({exc}); fix or remove that line") from None
        if not isinstance(obj, dict):
            raise UserError(f"{self.path}:{n}: expected a JSON object per line")
        try:
            return Decision.model_validate(obj)
        except ValidationError as exc:
            raise UserError(f"{self.path}:{n}: invalid decision: {_message(exc)}") from None


def _fresh_line(fd: int) -> bytes:
    """b"\\n" when the file ends inside a line (a torn write), so the next line starts fresh."""
    size = os.fstat(fd).st_size
    return b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable too (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def outcome(decision: Decision) -> int | str | None:
    """What a decision says about the row: its level (accept, relabel), ``"reject"``, or None (skip)."""
    if decision.decision == "reject":
        return "reject"
    return decision.level if decision.decision in ("accept", "relabel") else None


def latest(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """(row id, reviewer) -> that reviewer's last decision on the row (log order wins)."""
    out: dict[tuple[str, str], Decision] = {}
    for d in decisions:
        out[d.row_id, d.reviewer] = d
    return out
