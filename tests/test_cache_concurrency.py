"""One SQLite request cache shared by concurrent runs: no "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import DEMO
from llm_aug.core.errors import DataError
from llm_aug.llm.cache import RequestCache
from llm_aug.llm.types import ChatRequest, Generation, user_messages
from llm_server import LLMServer


def _req(i: int) -> ChatRequest:
    return ChatRequest(id=f"i{i}", messages=user_messages(f"帖子{i}"))


def _gen(text: str) -> Generation:
    return Generation(request_id="x", index=0, text=text, prompt_tokens=1, completion_tokens=1)


def test_a_connection_that_read_can_still_write_after_another_committed(tmp_path):
    path = tmp_path / "c.sqlite"
    first = RequestCache(path, commit_every=100)
    assert first.get(_req(0), "k0") == [None]  # a read, as a run does at its start
    with RequestCache(path, commit_every=1) as second:
        second.put("k1", [_gen("from second")])  # committed while the first is open
    first.put("k0", [_gen("from first")])
    assert first.get(_req(0), "k0")[0].text == "from first"  # buffered puts are visible
    first.close()
    with RequestCache(path) as cache:
        assert len(cache) == 2


def test_a_pending_write_does_not_block_another_connection(tmp_path):
    path = tmp_path / "c.sqlite"
    first = RequestCache(path, commit_every=100)
    first.put("k0", [_gen("pending")])  # not committed yet
    with RequestCache(path, commit_every=1) as second:
        second.put("k1", [_gen("now")])
    first.close()
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 2


WRITER = textwrap.dedent("""
    import sys
    from llm_aug.llm.cache import RequestCache
    from llm_aug.llm.types import ChatRequest, Generation, user_messages
    path, name = sys.argv[1], sys.argv[2]
    cache = RequestCache(path, commit_every=3)
    for i in range(400):
        request = ChatRequest(id=str(i), messages=user_messages(str(i)))
        cache.get(request, f"shared{i}")
        cache.put(f"shared{i}", [Generation(request_id=str(i), index=0, text=name)])
        cache.put(f"{name}{i}", [Generation(request_id=str(i), index=0, text=name)])
    cache.close()
""")


def test_processes_reading_and_writing_one_cache_all_succeed(tmp_path):
    path = tmp_path / "c.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stderr=subprocess.PIPE,
                              text=True) for name in ("a", "b", "c")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with RequestCache(path) as cache:
        assert len(cache) == 400 + 3 * 400


def _classify(url: str, out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "llm_aug", "-q", "classify", "--task", "fine", "--input",
            str(DEMO / "train.tsv"), "--output", str(out), "--cache", str(cache), "--backend", "openai",
            "--base-url", url, "--model", "m", "--concurrency", "4"]


def test_two_classify_runs_share_one_cache(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with LLMServer(latency_s=0.1) as srv:
        procs = [subprocess.Popen(_classify(srv.url, tmp_path / name / "p.jsonl", cache),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name in ("a", "b")]
        errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for e in errors]
    assert (tmp_path / "a" / "p.jsonl").read_bytes() == (tmp_path / "b" / "p.jsonl").read_bytes()
    with RequestCache(cache) as shared:
        assert len(shared) == 66


@pytest.mark.parametrize("content", [b"id\ttext\n1\thello\n", b"SQLite format 3\x00" + b"\x00" * 84])
def test_a_file_that_is_not_a_usable_cache_is_a_data_error(tmp_path, content):
    path = tmp_path / "c.sqlite"
    path.write_bytes(content)
    with pytest.raises(DataError, match="c.sqlite"):
        RequestCache(path)


def test_another_programs_table_is_not_taken_for_the_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE generations (id INTEGER, other TEXT)")
    db.close()
    with pytest.raises(DataError, match="another program"):
        RequestCache(path)


def test_open_waits_out_a_lock_sqlite_reports_at_once(tmp_path, monkeypatch):
    # Two runs started together: SQLite may say "database is locked" at once (no busy wait)
    # while the other process switches the file to WAL or closes it; that was exit 2.
    real, calls = RequestCache._connect, []

    def flaky(self, timeout):
        calls.append(timeout)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(self, timeout)

    monkeypatch.setattr(RequestCache, "_connect", flaky)
    with RequestCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", [Generation(request_id="1", index=0, text="x")])
    assert len(calls) == 3


def test_open_gives_up_on_a_lock_that_stays(tmp_path, monkeypatch):
    def locked(self, timeout):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(RequestCache, "_connect", locked)
    with pytest.raises(DataError, match="is unusable .database is locked."):
        RequestCache(tmp_path / "c.sqlite", busy_timeout_s=0.2)
