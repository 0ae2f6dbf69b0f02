"""The review app in a real browser: Playwright driving Debian's Chromium (no browser download).

``llm-aug review RUN`` runs as a real process. The test reviews 20 posts of an EDA run of
the demo corpus with the keyboard only, SIGKILLs the server after 12 acknowledged
decisions, sees the next decision shown as NOT SAVED, restarts the server (a new token),
and finds every acknowledged decision in review.jsonl and on the page, which resumes at
the first undecided post. Then a second reviewer decides some of the same posts and the
page shows their agreement (Cohen's kappa). Screenshots are checked as in
``test_pages_render.py``: not blank, and the page's fonts draw its Chinese text (no tofu).
Every request the page makes goes to the review server itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from augment_run import make_run
from conftest import REPO
from llm_aug.jobs.review.server import bind
from llm_aug.jobs.review.store import REJECT_REASONS, REVIEW_FILE, Decision, ReviewLog, latest

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) drives the browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                                "(apt-get install chromium fonts-noto-cjk)")]

from test_pages_render import MIN_GLYPH_COLUMNS, glyph_columns, ink_fraction, probe_line  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
URL = re.compile(r"open (http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+)")
# 20 decisions, every kind: (keys after the command key, what is expected); see _expected
PLAN = ["a", "r3", "l10", "s", "a", "l1", "a", "r1", "a", "a", "l5", "r7",
        "a", "s", "r2", "l0", "a", "a", "l10", "a"]
BEFORE_KILL = 12


class Server:
    """``python -m llm_aug review RUN --port P --no-open`` as a child process; its URL from its output."""

    def __init__(self, run: Path, port: int, reviewer: str, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llm_aug", "review", str(run), "--port", str(port), "--no-open",
                 "--reviewer", reviewer], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := URL.search(self.log.read_text()):
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.kill()
        pytest.fail(f"review server printed no URL (exit {self.proc.returncode}):\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def _free_port() -> int:
    sock = bind(0)
    port = sock.getsockname()[1]
    sock.close()
    return port


def _expected(step: str, intended: int) -> tuple[str, int | None, str | None, list[str]]:
    """(decision, level, reason, keys) of a PLAN step on a post of level ``intended``."""
    if step == "a":
        return "accept", intended, None, ["a"]
    if step == "s":
        return "skip", None, None, ["s"]
    if step[0] == "r":
        return "reject", None, REJECT_REASONS[int(step[1:]) - 1], ["r", step[1:]]
    level = int(step[1:])
    if level == intended:  # relabel must change the level
        level = 9 if level == 10 else 2 if level == 1 else level + 1
    keys = {10: ["1", "0"], 1: ["1", "Enter"]}.get(level, [str(level)])
    return "relabel", level, None, ["l", *keys]


def _text(page, selector: str) -> str:
    return page.text_content(selector) or ""


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => document.getElementById('post-id').textContent.length > 0")
    page.wait_for_function("() => document.querySelectorAll('#progress tr').length > 1")


def _decide(page, step: str) -> tuple[str, tuple]:
    """Press a PLAN step's keys on the shown post; wait for the server's acknowledgement and the next post."""
    row = _text(page, "#post-id")
    intended = int(re.search(r"intended level (\d+)", _text(page, "#intended")).group(1))
    decision, level, reason, keys = _expected(step, intended)
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_function("row => { const s = document.getElementById('save');"
                           " return s.classList.contains('saved') && s.textContent.includes(row); }", arg=row)
    page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=row)
    return row, (decision, level, reason)


def _on_disk(run: Path, reviewer: str) -> dict[str, tuple]:
    return {row: (d.decision, d.level, d.reason) for (row, who), d in latest(ReviewLog(run / REVIEW_FILE).read()).items()
            if who == reviewer}


def _shown(page, n: int) -> dict[str, str]:
    """Walk back ``n`` posts with the keyboard (k): post id -> what the page says is saved for it."""
    seen = {}
    for _ in range(n):
        before = _text(page, "#post-id")
        page.keyboard.press("k")
        page.wait_for_function("prev => document.getElementById('post-id').textContent !== prev", arg=before)
        seen[_text(page, "#post-id")] = _text(page, "#mine")
    return seen


def _says(shown: str, expected: tuple) -> bool:
    decision, level, reason = expected
    want = {"accept": f"accepted ({level} ", "relabel": f"relabelled to {level} ", "reject": f"rejected: {reason}",
            "skip": "skipped"}[decision]
    return shown.startswith("✓ saved: ") and want in shown


def _check_screenshot(page, png: Path) -> None:
    """Not blank, and the page's own fonts draw its Chinese text (glyphs, not tofu boxes)."""
    from PIL import Image

    page.screenshot(path=str(png))
    with Image.open(png) as im:
        ink = ink_fraction(im.convert("L"))
    assert ink > 0.01, f"{png.name}: the screenshot is (nearly) blank ({ink:.4%} ink)"
    line = probe_line(page.content())
    page.evaluate("""line => { const p = document.createElement('p'); p.id = 'probe'; p.textContent = line;
        Object.assign(p.style, {fontSize: '48px', lineHeight: '1.3', whiteSpace: 'nowrap', margin: '0',
        color: '#000', background: '#fff', position: 'fixed', left: '0', top: '0', zIndex: '99', padding: '4px'});
        document.body.append(p); }""", line)
    probe = png.with_suffix(".probe.png")
    page.locator("#probe").screenshot(path=str(probe))
    page.evaluate("() => document.getElementById('probe').remove()")
    with Image.open(probe) as im:
        columns = glyph_columns(im.convert("L"))
    assert columns >= MIN_GLYPH_COLUMNS, f"{line!r} drawn as boxes (tofu): {columns} distinct columns"


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _page(browser, outside: list[str]):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(20_000)

    def route(r):  # nothing leaves the machine: anything not for the local server is refused and recorded
        if re.match(r"http://127\.0\.0\.1:\d+/", r.request.url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def _until_killed(page, run: Path, server: Server) -> tuple[dict[str, tuple], str]:
    """12 decisions acknowledged, then SIGKILL; the next decision is shown as not saved."""
    _open(page, server.url)
    acked = dict(_decide(page, step) for step in PLAN[:BEFORE_KILL])
    assert _on_disk(run, "alice") == acked
    server.kill()  # no shutdown, no flush beyond what each decision already synced
    unsaved = _text(page, "#post-id")
    page.keyboard.press("a")
    try:
        page.wait_for_function("() => document.getElementById('save').classList.contains('failed')")
    except sync_api.TimeoutError:
        pytest.fail(f"no failed save shown: save {_text(page, '#save')!r}, post {_text(page, '#mine')!r}")
    assert "NOT SAVED" in _text(page, "#save") and "not saved yet" in _text(page, "#mine")
    assert "✓ saved" not in _text(page, "#mine") and unsaved not in _on_disk(run, "alice")
    return acked, unsaved


def _after_restart(page, run: Path, server: Server, acked: dict[str, tuple], unsaved: str) -> None:
    """The old page is refused by the new server; the new URL resumes and shows every saved decision."""
    assert server.url != page.url  # a new token
    # the old page's retry reaches the new server with the old token: refused, still shown as not saved
    page.wait_for_function("() => document.getElementById('save').classList.contains('refused')", timeout=30_000)
    assert "NOT SAVED" in _text(page, "#save") and "token" in _text(page, "#save")
    _open(page, server.url)
    assert _text(page, "#post-id") == unsaved  # resumes at the first post without a decision
    assert _on_disk(run, "alice") == acked
    shown = _shown(page, BEFORE_KILL)
    assert set(shown) == set(acked) and all(_says(shown[r], acked[r]) for r in acked), shown
    _open(page, server.url)
    acked.update(_decide(page, step) for step in PLAN[BEFORE_KILL:])
    assert len(acked) == 20 and unsaved in acked and _on_disk(run, "alice") == acked


def _second_reviewer(page, run: Path, server: Server, acked: dict[str, tuple]) -> None:
    """bob decides 8 of alice's posts; the page shows their agreement with kappa."""
    _open(page, server.url)
    bob = dict(_decide(page, step) for step in ["a", "a", "r1", "a", "l3", "a", "a", "a"])
    assert _on_disk(run, "bob") == bob and set(bob) <= set(acked)
    page.wait_for_function("() => document.getElementById('agreement').textContent.includes('bob')")
    agreement = _text(page, "#agreement")
    both = sum(acked[row][0] != "skip" for row in bob)  # a skip is no decision
    assert both >= 6 and "Agreement alice / bob" in agreement and f"{both} posts decided by both" in agreement
    assert "κ" in agreement


def test_review_survives_a_killed_server_and_two_reviewers_agree(browser, tmp_path):
    run = make_run(tmp_path / "data")
    port = _free_port()
    outside: list[str] = []
    page, errors = _page(browser, outside)
    first = Server(run, port, "alice", tmp_path / "server-1.log")
    try:
        acked, unsaved = _until_killed(page, run, first)
    finally:
        first.kill()
    server = Server(run, port, "alice", tmp_path / "server-2.log")  # the same command again
    try:
        _after_restart(page, run, server, acked, unsaved)
        _check_screenshot(page, tmp_path / "alice.png")
    finally:
        server.kill()
    second = Server(run, _free_port(), "bob", tmp_path / "server-3.log")
    try:
        _second_reviewer(page, run, second, acked)
        _check_screenshot(page, tmp_path / "bob.png")
    finally:
        second.kill()
    assert not outside, f"the page asked for outside resources: {outside}"
    assert not errors, f"errors on the page: {errors}"


def test_a_failed_save_is_shown_and_retried_never_dropped(browser, tmp_path):
    run = make_run(tmp_path / "data")
    server = Server(run, _free_port(), "alice", tmp_path / "server.log")
    outside: list[str] = []
    page, errors = _page(browser, outside)
    failures = [2]

    def flaky(route):  # the first two saves never reach the server
        if failures[0]:
            failures[0] -= 1
            route.abort("connectionrefused")
        else:
            route.continue_()
    try:
        _open(page, server.url)
        page.route("**/api/decisions*", flaky)
        row = _text(page, "#post-id")
        intended = int(re.search(r"intended level (\d+)", _text(page, "#intended")).group(1))
        page.keyboard.press("a")
        page.wait_for_function("() => document.getElementById('save').classList.contains('failed')")
        assert "NOT SAVED" in _text(page, "#save") and "retry 1 in 1 s" in _text(page, "#save")
        assert "not saved yet" in _text(page, "#mine") and not (run / REVIEW_FILE).exists()
        page.keyboard.press("s")  # no second decision while one is unsaved
        assert "not saved yet" in _text(page, "#save")
        page.wait_for_function("row => { const s = document.getElementById('save');"
                               " return s.classList.contains('saved') && s.textContent.includes(row); }", arg=row)
        assert failures == [0] and len(ReviewLog(run / REVIEW_FILE).read()) == 1
        assert _on_disk(run, "alice") == {row: ("accept", intended, None)}
        page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=row)
        held = _text(page, "#post-id")
        page.keyboard.down("s")  # a held key: its repeats (event.repeat) decide nothing more
        page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=held)
        page.keyboard.down("s")
        page.keyboard.down("s")
        page.keyboard.up("s")
        page.wait_for_timeout(1000)
        assert set(_on_disk(run, "alice")) == {row, held} and len(ReviewLog(run / REVIEW_FILE).read()) == 2
    finally:
        server.kill()
    assert not outside and not errors, (outside, errors)


def test_next_undecided_reaches_past_the_listed_posts(browser, tmp_path):
    """A run of 700+ posts (the queue lists the first 500): n still finds the next undecided post."""
    run = make_run(tmp_path / "data", balance="70", extra=("--max-requests-per-level", "400"))
    ids = [json.loads(line)["id"] for line in (run / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
           if json.loads(line)["synthetic"]]
    assert len(ids) > 610
    log = ReviewLog(run / REVIEW_FILE)
    level = {json.loads(line)["id"]: json.loads(line)["label"]
             for line in (run / "corpus.jsonl").read_text(encoding="utf-8").splitlines()}
    for row in [*ids[:600], ids[601]]:
        log.append(Decision(row_id=row, decision="accept", level=level[row], reviewer="alice"))
    server = Server(run, _free_port(), "alice", tmp_path / "server.log")
    outside: list[str] = []
    page, errors = _page(browser, outside)
    try:
        _open(page, server.url)
        assert _text(page, "#post-id") == ids[600] and _text(page, "#position").startswith("601 / ")
        page.keyboard.press("n")  # past 601, decided
        page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=ids[600])
        assert _text(page, "#post-id") == ids[602]
        page.keyboard.press("a")
        page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=ids[602])
        for _ in range(3):  # back to 600
            before = _text(page, "#post-id")
            page.keyboard.press("k")
            page.wait_for_function("prev => document.getElementById('post-id').textContent !== prev", arg=before)
        assert _text(page, "#post-id") == ids[600]
        page.keyboard.press("n")  # 601 and 602 (just saved) decided
        page.wait_for_function("row => document.getElementById('post-id').textContent !== row", arg=ids[600])
        assert _text(page, "#post-id") == ids[603]
    finally:
        server.kill()
    assert not outside and not errors, (outside, errors)
