"""review.jsonl: validated decisions, one fsync'd line each, readable after a crash, safe across threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from llm_aug.core.errors import UserError
from llm_aug.jobs.review.store import (
    REJECT_REASONS,
    REVIEW_FILE,
    Decision,
    ReviewLog,
    latest,
    parse_decision,
)


def _accept(row: str, reviewer: str = "ann", level: int = 3) -> Decision:
    return Decision(row_id=row, decision="accept", level=level, reviewer=reviewer, time="")


def test_append_fills_time_and_reads_back_in_order(tmp_path):
    log = ReviewLog(tmp_path / REVIEW_FILE)
    assert log.read() == []
    first = log.append(_accept("eda-1"))
    second = log.append(Decision(row_id="eda-2", decision="reject", level=None, reason="near copy",
                                 reviewer="  Ann Lee ", time="2026-01-02T03:04:05+00:00"))
    assert first.time.endswith("+00:00") and second.time == "2026-01-02T03:04:05+00:00"
    assert second.reviewer == "Ann Lee"
    assert log.read() == [first, second]
    lines = (tmp_path / REVIEW_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["row_id"] for line in lines] == ["eda-1", "eda-2"]


def test_fsync_per_append(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    log = ReviewLog(tmp_path / REVIEW_FILE)
    for i in range(3):
        log.append(_accept(f"r{i}"))
    # one per decision, plus the folder once when the log is created
    assert len(calls) == 4


@pytest.mark.parametrize("fields, message", [
    ({"decision": "reject"}, "reject needs a reason"),
    ({"decision": "reject", "reason": "boring"}, "one of: wrong level"),
    ({"decision": "accept"}, "accept needs a level"),
    ({"decision": "relabel"}, "relabel needs a level"),
    ({"decision": "skip", "level": 2}, "skip takes no level"),
    ({"decision": "accept", "level": 2, "reason": "other"}, "accept takes no reason"),
    ({"decision": "maybe"}, "decision"),
    ({"decision": "accept", "level": 1, "reviewer": "   "}, "reviewer name must be 1 to 64"),
    ({"decision": "accept", "level": 1, "reviewer": "x" * 65}, "reviewer name must be 1 to 64"),
    ({"decision": "accept", "level": 1, "reviewer": "ann\x07"}, "control characters"),
    ({"decision": "accept", "level": 1, "time": "yesterday"}, "not an ISO 8601 time"),
    ({"decision": "accept", "level": 1, "colour": "red"}, "colour"),
])
def test_invalid_decisions_are_user_errors(fields, message):
    data = {"row_id": "eda-1", "reviewer": "ann", **fields}
    with pytest.raises(UserError, match=message):
        parse_decision(data)


def test_times_are_kept_in_utc():
    def at(t):
        return parse_decision({"row_id": "r", "decision": "skip", "reviewer": "a", "time": t}).time

    assert at("2026-12-03T20:30:00+02:00") == "2026-12-03T18:30:00+00:00"
    assert at("2026-12-03T18:30:00Z") == at("2026-12-03T18:30:00") == "2026-12-03T18:30:00+00:00"


def test_every_reject_reason_is_accepted():
    for reason in REJECT_REASONS:
        assert parse_decision({"row_id": "r", "decision": "reject", "reason": reason, "reviewer": "a"}).reason == reason


def test_latest_keeps_each_reviewers_last_word():
    ds = [_accept("r1", "ann"), _accept("r1", "bob"),
          Decision(row_id="r1", decision="relabel", level=5, reviewer="ann"), _accept("r2", "ann")]
    got = latest(ds)
    assert set(got) == {("r1", "ann"), ("r1", "bob"), ("r2", "ann")}
    assert got["r1", "ann"].decision == "relabel" and got["r1", "ann"].level == 5


def test_torn_last_line_is_skipped_and_next_append_starts_fresh(tmp_path, caplog):
    path = tmp_path / REVIEW_FILE
    log = ReviewLog(path)
    kept = [log.append(_accept(f"r{i}")) for i in range(3)]
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the last write cut short: no newline, half a JSON object
    assert log.read() == kept[:2]
    assert "torn line" in caplog.text
    after = log.append(_accept("r9", "bob"))
    text = path.read_text(encoding="utf-8")
    assert text.endswith(json.dumps(after.model_dump(mode="json"), ensure_ascii=False) + "\n")
    assert log.read() == [*kept[:2], after]  # the torn line stays, skipped; nothing glued onto it
    assert len(text.splitlines()) == 4


def test_full_disk_is_a_user_error_and_the_log_stays_readable(tmp_path, monkeypatch):
    import errno

    from llm_aug.core.files import DiskFull
    from llm_aug.jobs.review import store

    log = ReviewLog(tmp_path / REVIEW_FILE)
    kept = log.append(_accept("r1"))
    real = store.os.write

    def half_then_full(fd, data):  # the disk fills up in the middle of the line
        real(fd, bytes(data[:20]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "write", half_then_full)
    with pytest.raises(DiskFull, match="decision not saved: cannot write .*review.jsonl: No space left"):
        log.append(_accept("r2"))
    monkeypatch.setattr(store.os, "write", real)
    assert log.read() == [kept]
    again = log.append(_accept("r2"))
    assert log.read() == [kept, again]


def test_bad_complete_line_names_the_line(tmp_path):
    path = tmp_path / REVIEW_FILE
    log = ReviewLog(path)
    log.append(_accept("r1"))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"row_id": "r2", "decision": "accept", "reviewer": "ann"}\n')  # no level
    log.append(_accept("r3"))
    with pytest.raises(UserError, match=r"review.jsonl:2: invalid decision: .*accept needs a level"):
        log.read()


def test_threads_append_without_losing_or_mixing_lines(tmp_path):
    log = ReviewLog(tmp_path / REVIEW_FILE)

    def work(who: str) -> None:
        for i in range(40):
            log.append(_accept(f"{who}-{i}", who))

    threads = [threading.Thread(target=work, args=(f"rev{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = log.read()
    assert len(got) == 240 and len({(d.row_id, d.reviewer) for d in got}) == 240
    for n in range(6):  # each thread's own order is kept
        assert [d.row_id for d in got if d.reviewer == f"rev{n}"] == [f"rev{n}-{i}" for i in range(40)]


_WRITER = """
import sys
from pathlib import Path
from llm_aug.jobs.review.store import Decision, ReviewLog
log = ReviewLog(Path(sys.argv[1]))
i = 0
while True:
    log.append(Decision(row_id=f"row-{i}", decision="accept", level=i % 11, reviewer="ann"))
    print(i, flush=True)  # acknowledged only once append returned
    i += 1
"""


def test_killed_writer_loses_no_acknowledged_decision(tmp_path):
    path = tmp_path / REVIEW_FILE
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 50 and time.monotonic() < deadline:
        acked.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(acked) == 50
    got = [d.row_id for d in ReviewLog(path).read()]
    assert got[:len(acked)] == [f"row-{i}" for i in acked]
    assert len(got) - len(acked) <= 1  # at most the one in flight when the kill came
    ReviewLog(path).append(_accept("after-crash"))
    assert ReviewLog(path).read()[-1].row_id == "after-crash"
