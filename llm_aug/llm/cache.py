"""The SQLite request cache: LLM answers kept per (request content, sample index).

:class:`RequestCache` stores one row per (request content, sample index). The key
hashes what determines an answer: backend name and model id, messages, sampling
parameters (``n`` excluded, so raising ``n`` reuses the samples already drawn), seed,
JSON schema and the sample index. Never the API key or the item id:
two items with the same prompt share samples.

The resumable JSONL result files live in :mod:`llm_aug.llm.results_file`;
:class:`ResultsFile` is importable from here too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Sequence

from llm_aug.core.errors import DataError
from llm_aug.core.paths import check_sqlite_file
from llm_aug.llm.results_file import ResultsFile
from llm_aug.llm.types import ChatRequest, Generation

__all__ = ["BUSY_TIMEOUT_S", "RequestCache", "ResultsFile", "request_hash", "sample_key"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write
_COLUMNS = ("key", "text", "finish_reason", "prompt_tokens", "completion_tokens", "created")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)"""


def request_hash(namespace: str, request: ChatRequest) -> str:
    """Hash of everything that determines the request's samples except ``n``."""
    params = request.params.model_dump(exclude={"n"})
    blob = json.dumps(
        {"ns": namespace, "messages": [[m.role, m.content] for m in request.messages],
         "params": params, "schema": request.json_schema},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """True for SQLite's "database is locked" / "busy": another process holds the file."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _unusable(path: Path, exc: Exception) -> DataError:
    return DataError(f"request cache {path} is unusable ({exc}); give another --cache path")


def sample_key(request_key: str, index: int) -> str:
    """Cache key of sample ``index`` of a request."""
    return f"{request_key}:{index}"


class RequestCache:
    """SQLite-backed map from sample key to generation, shared safely by concurrent runs.

    The database is in WAL mode, so readers never wait for a writer, and reads run
    outside any transaction (no long-lived snapshot that a later write would have to
    upgrade). Samples are buffered and written every ``commit_every`` puts and on
    :meth:`close`, each time in one short ``BEGIN IMMEDIATE`` transaction that waits up
    to ``busy_timeout_s`` for another process's write. A process killed in between loses
    only its buffered samples, which are requested again.
    """

    def __init__(self, path: str | Path, *, commit_every: int = 32,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        check_sqlite_file(self.path, thorough=False)  # the jobs ran the thorough check
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._commit_every, self._puts = commit_every, 0
        self._warned = False
        self._buffer: dict[str, tuple] = {}
        self._db = self._open(busy_timeout_s)

    def _open(self, busy_timeout_s: float) -> sqlite3.Connection:
        """Connect, retrying while another process holds the file at the same moment.

        SQLite can answer "database is locked" at once, without waiting out the busy
        timeout, while another connection switches the file to WAL or closes it as the
        last one (checkpoint); two runs started together hit that window.
        """
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                return self._connect(busy_timeout_s)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise _unusable(self.path, exc) from None
                time.sleep(0.05)

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                             check_same_thread=False)
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
            db.execute("PRAGMA synchronous=NORMAL")
            columns = tuple(row[1] for row in db.execute("PRAGMA table_info(generations)"))
            if not columns:
                db.execute(_SCHEMA)
            elif columns != _COLUMNS:
                raise DataError(f"request cache {self.path} holds another program's `generations` "
                                "table; give another --cache path")
        except sqlite3.OperationalError as exc:
            db.close()
            if _is_busy(exc):
                raise
            raise _unusable(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise _unusable(self.path, exc) from None
        except DataError:
            db.close()
            raise
        return db

    def get(self, request: ChatRequest, request_key: str) -> list[Generation | None]:
        """The cached samples 0..n-1 of ``request`` (None where missing)."""
        return self.get_many([(request, request_key)])[0]

    def get_many(self, pairs: Sequence[tuple[ChatRequest, str]]) -> list[list[Generation | None]]:
        """:meth:`get` for many (request, key) pairs, a few hundred keys per query."""
        wanted = [sample_key(key, i) for request, key in pairs for i in range(request.params.n)]
        rows = {k: self._buffer[k] for k in wanted if k in self._buffer}
        for start in range(0, len(wanted), 500):  # SQLite caps the number of parameters
            chunk = wanted[start:start + 500]
            rows.update((row[0], row) for row in self._db.execute(
                "SELECT key, text, finish_reason, prompt_tokens, completion_tokens FROM "
                f"generations WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return [[_generation(request.id, i, rows.get(sample_key(key, i)))
                 for i in range(request.params.n)] for request, key in pairs]

    def put(self, request_key: str, generations: Iterable[Generation]) -> None:
        """Store samples (existing keys are kept: the first answer wins)."""
        now = time.time()
        for g in generations:
            key = sample_key(request_key, g.index)
            self._buffer.setdefault(key, (key, g.text, g.finish_reason, g.prompt_tokens,
                                          g.completion_tokens, now))
        self._puts += 1
        if self._puts >= self._commit_every:
            self.commit()

    def commit(self) -> None:
        """Write the buffered samples in one short transaction.

        If the database stays busy past the timeout (or the disk is full), the samples
        stay buffered for the next commit and a warning is logged: the cache only
        saves requests, so the run goes on.
        """
        self._puts = 0
        if not self._buffer:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")  # takes the write lock now, waiting if needed
            try:
                self._db.executemany("INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?, ?)",
                                     list(self._buffer.values()))
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            # Once at WARNING: a full disk fails every later commit too.
            logger.log(logging.DEBUG if self._warned else logging.WARNING,
                       "request cache %s: %d sample(s) not written yet (%s)",
                       self.path, len(self._buffer), exc)
            self._warned = True
            return
        self._buffer.clear()

    def __len__(self) -> int:
        """Number of samples stored (buffered ones are written first)."""
        self.commit()
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] + len(self._buffer)

    def close(self) -> None:
        """Write what is buffered and close."""
        self.commit()
        if self._buffer:
            logger.warning("request cache %s: %d sample(s) could not be cached",
                           self.path, len(self._buffer))
        self._db.close()

    def __enter__(self) -> "RequestCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _generation(request_id: str, index: int, row: tuple | None) -> Generation | None:
    if row is None:
        return None
    return Generation(request_id=request_id, index=index, text=row[1], finish_reason=row[2],
                      prompt_tokens=row[3], completion_tokens=row[4])
