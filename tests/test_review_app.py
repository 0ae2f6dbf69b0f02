"""The review web app's API (Starlette TestClient) on a real EDA run of the demo corpus.

Token and Host checks on every request, decisions on disk before the answer, queue
filters, progress per level, two reviewers' agreement; and the ``review`` CLI group.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score
from starlette.testclient import TestClient
from typer.main import get_command

from augment_run import make_run
from clirun import assert_ok, invoke
from llm_aug.cli import app as cli_app
from llm_aug.core.errors import UserError
from llm_aug.eval.render import FONT_STACK
from llm_aug.jobs.review.app import STATIC, make_app
from llm_aug.jobs.review.server import ReviewServer, bind
from llm_aug.jobs.review.store import REJECT_REASONS, REVIEW_FILE, ReviewLog

TOKEN = "t0ken-for-the-tests-0123456789"
BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("review-app"))


@pytest.fixture
def run_dir(generated, tmp_path) -> Path:
    """A fresh copy of the run per test (each test writes its own review.jsonl)."""
    return Path(shutil.copytree(generated, tmp_path / "run"))


def client(run_dir: Path, reviewer: str = "alice", base: str = BASE) -> TestClient:
    return TestClient(make_app(run_dir, TOKEN, reviewer), base_url=base, headers={"X-Review-Token": TOKEN})


def items(c: TestClient, **filters) -> list[str]:
    res = c.get("/api/queue", params=filters)
    assert res.status_code == 200, res.text
    return res.json()["ids"]


def decide(c: TestClient, row_id: str, decision: str, **extra):
    return c.post("/api/decisions", json={"row_id": row_id, "decision": decision, **extra})


def test_every_request_needs_the_token(run_dir):
    bare = TestClient(make_app(run_dir, TOKEN, "alice"), base_url=BASE)
    for path in ("/", "/api/session", "/api/queue", "/static/app.js", "/api/status"):
        assert bare.get(path).status_code == 403, path
        assert bare.get(path, params={"token": TOKEN[:-1] + "x"}).status_code == 403, path
        assert bare.get(path, headers={"X-Review-Token": TOKEN + "x"}).status_code == 403, path
    assert bare.post("/api/decisions", json={"row_id": "x", "decision": "skip"}).status_code == 403
    page = bare.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and "wrong token" not in page.text
    # the page's own assets carry the token, so they load; the header works as well as the query
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert len(assets) == 4 and all(a.endswith(f"?token={TOKEN}") for a in assets)
    assert all(bare.get("/" + a).status_code == 200 for a in assets)
    assert bare.get("/api/session", headers={"X-Review-Token": TOKEN}).json()["reviewer"] == "alice"
    assert not (run_dir / REVIEW_FILE).exists()


def test_only_loopback_host_names_are_served(run_dir):
    for base in ("http://evil.example", "http://127.0.0.1.nip.io:8765", "http://10.0.0.5:8765"):
        res = client(run_dir, base=base).get("/api/session")
        assert res.status_code == 403 and "127.0.0.1" in res.text, base
    for base in ("http://localhost:8765", "http://127.0.0.1:9000", "http://LOCALHOST"):
        assert client(run_dir, base=base).get("/api/session").status_code == 200, base


def test_pages_forbid_outside_resources_and_use_the_cjk_font_stack(run_dir):
    res = client(run_dir).get("/")
    policy = res.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert res.headers["referrer-policy"] == "no-referrer" and res.headers["cache-control"] == "no-store"
    for path in sorted(STATIC.iterdir()):  # no CDN, no web font, no remote URL of any kind
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|@font-face|url\(", text, re.I), path.name
    assert FONT_STACK in (STATIC / "app.css").read_text(encoding="utf-8")
    assert client(run_dir).get("/static/..%2Fapp.py").status_code == 404
    assert client(run_dir).get("/static/nothing.js").status_code == 404


def test_a_decision_is_on_disk_when_acknowledged(run_dir):
    c = client(run_dir)
    session = c.get("/api/session").json()
    assert session["reasons"] == list(REJECT_REASONS) and [lv["level"] for lv in session["levels"]] == list(range(11))
    first, second, third, fourth = items(c)[:4]
    item = c.get(f"/api/items/{first}").json()
    assert item["mine"] is None and item["item"]["exemplars"] and len(item["item"]["neighbours"]) == 3

    refused = decide(c, first, "accept", level=(item["item"]["level"] + 1) % 11)  # accept keeps the row's level
    assert refused.status_code == 400 and "use relabel" in refused.json()["error"]
    assert decide(c, first, "accept", level=99).status_code == 400
    assert not (run_dir / REVIEW_FILE).exists() or not ReviewLog(run_dir / REVIEW_FILE).read()
    res = decide(c, first, "accept")  # no level: the row's own
    assert res.status_code == 200
    on_disk = ReviewLog(run_dir / REVIEW_FILE).read()
    assert [(d.row_id, d.decision, d.level, d.reviewer) for d in on_disk] == [
        (first, "accept", item["item"]["level"], "alice")]
    assert res.json()["saved"] == on_disk[0].model_dump(mode="json") and on_disk[0].time

    other = (item["item"]["level"] + 5) % 11
    assert decide(c, second, "relabel", level=other).status_code == 200
    assert decide(c, third, "reject", reason=REJECT_REASONS[4]).status_code == 200
    assert decide(c, fourth, "skip").status_code == 200
    assert c.get(f"/api/items/{second}").json()["mine"]["level"] == other
    assert [d.decision for d in ReviewLog(run_dir / REVIEW_FILE).read()] == ["accept", "relabel", "reject", "skip"]


@pytest.mark.parametrize("body,status,message", [
    ({"decision": "relabel"}, 400, "relabel needs a level"),
    ({"decision": "relabel", "level": "same"}, 400, "other than the row's own"),
    ({"decision": "relabel", "level": 11}, 400, "not a level"),
    ({"decision": "reject"}, 400, "reject needs a reason"),
    ({"decision": "reject", "reason": "boring"}, 400, "reject needs a reason"),
    ({"decision": "maybe"}, 400, "decision"),
    ({"decision": "skip", "row_id": "no-such-row"}, 404, "no synthetic post"),
])
def test_refused_decisions_say_why_and_write_nothing(run_dir, body, status, message):
    c = client(run_dir)
    row = items(c)[0]
    level = c.get(f"/api/items/{row}").json()["item"]["level"]
    body = {"row_id": row, **body}
    if body.get("level") == "same":
        body["level"] = level
    res = c.post("/api/decisions", json=body)
    assert res.status_code == status and message in res.json()["error"], res.text
    assert not (run_dir / REVIEW_FILE).exists()
    assert c.post("/api/decisions", content=b"{not json").status_code == 400


def test_queue_filters_and_resume(run_dir):
    c = client(run_dir)
    run_items = {i: c.get(f"/api/items/{i}").json()["item"] for i in items(c)}
    levels = sorted({it["level"] for it in run_items.values()})
    methods = sorted({it["method"] for it in run_items.values()})
    assert len(levels) > 2 and len(methods) >= 2
    for level in levels:
        assert items(c, level=level) == [i for i, it in run_items.items() if it["level"] == level]
    for method in methods:
        assert items(c, method=method) == [i for i, it in run_items.items() if it["method"] == method]
    assert items(c, score="length", min=20, max=40) == [
        i for i, it in run_items.items() if 20 <= it["scores"]["length"] <= 40]
    assert 0 < len(items(c, score="length", min=20, max=40)) < len(run_items)

    ids = list(run_items)
    decide(c, ids[0], "accept")
    decide(c, ids[1], "skip")
    decide(c, ids[2], "reject", reason="other")
    assert items(c, status="decided") == [ids[0], ids[2]] and items(c, status="skipped") == [ids[1]]
    assert items(c, status="open") == ids[3:]
    assert c.get("/api/queue").json()["resume"] == ids[3]  # the first post this reviewer has not decided
    assert c.get("/api/queue").json()["decided"] == ids[:3]  # a skip too: "n" passes over it
    for i in ids[3:]:
        decide(c, i, "accept")
    assert c.get("/api/queue").json()["resume"] == ids[1]  # then the skipped one

    for bad, message in (({"level": 42}, "not a level"), ({"level": "x"}, "integer"), ({"status": "new"}, "status"),
                         ({"min": 3}, "score's name"), ({"score": "length", "max": "nan"}, "finite")):
        res = c.get("/api/queue", params=bad)
        assert res.status_code == 400 and message in res.json()["error"], (bad, res.text)


def test_progress_per_level(run_dir):
    c = client(run_dir)
    ids = items(c)
    by_level: dict[int, list[str]] = {}
    for i in ids:
        by_level.setdefault(c.get(f"/api/items/{i}").json()["item"]["level"], []).append(i)
    level, rows = next((lv, rows) for lv, rows in sorted(by_level.items()) if len(rows) >= 4)
    decide(c, rows[0], "accept")
    decide(c, rows[1], "reject", reason="implausible")
    decide(c, rows[2], "relabel", level=(level + 1) % 11)
    decide(c, rows[3], "skip")
    decide(c, rows[0], "reject", reason="near copy")  # changed their mind: the latest one counts
    mine = {p["level"]: p for p in c.get("/api/status").json()["mine"]}
    assert mine[level] == {"level": level, "total": len(rows), "decided": 3, "accepted": 0, "rejected": 2,
                           "relabelled": 1, "skipped": 1}
    assert all(p["decided"] == 0 for lv, p in mine.items() if lv != level)
    assert sum(p["total"] for p in mine.values()) == len(ids)


def test_two_reviewers_agreement_and_disagreement_queue(run_dir):
    alice, bob = client(run_dir, "alice"), client(run_dir, "bob")
    ids = items(alice)[:8]
    level = {i: alice.get(f"/api/items/{i}").json()["item"]["level"] for i in ids}
    for i in ids:
        decide(alice, i, "accept")
    for i in ids[:6]:
        decide(bob, i, "accept")
    decide(bob, ids[6], "reject", reason="wrong level")
    decide(bob, ids[7], "relabel", level=(level[ids[7]] + 2) % 11)

    # alice's server sees bob's decisions (the log is re-read when it changed), but not as hers
    status = alice.get("/api/status").json()
    assert status["reviewers"] == ["alice", "bob"]
    assert [p["rejected"] for p in status["mine"]] == [0] * len(status["mine"])
    (pair,) = status["agreement"]
    assert pair["reviewers"] == ["alice", "bob"] and pair["n_both"] == 8 and pair["percent"] == 75.0
    assert sorted(pair["disagreements"]) == sorted(ids[6:])
    a = [level[i] for i in ids]
    b = [level[i] for i in ids[:6]] + ["reject", (level[ids[7]] + 2) % 11]
    assert pair["kappa"] == pytest.approx(cohen_kappa_score([str(x) for x in a], [str(x) for x in b]), abs=1e-4)
    assert {int(lv) for lv in pair["per_level"]} == set(level.values())
    assert sorted(items(alice, disagreement=1)) == sorted(ids[6:])
    assert items(bob, disagreement=1, status="decided") == [i for i in items(bob) if i in ids[6:]]
    assert alice.get(f"/api/items/{ids[6]}").json()["mine"]["decision"] == "accept"


def test_make_app_refuses_a_short_token(run_dir):
    with pytest.raises(ValueError, match="token"):
        make_app(run_dir, "short", "alice")


def test_a_busy_port_is_a_user_error(run_dir):
    taken = bind(0)
    try:
        with pytest.raises(UserError, match=r"port \d+ on 127.0.0.1 is in use.*--port"):
            bind(taken.getsockname()[1])
    finally:
        taken.close()
    server = ReviewServer(run_dir, port=0, reviewer=" carol ")
    try:
        assert server.reviewer == "carol" and server.socket.getsockname()[0] == "127.0.0.1"
        assert re.fullmatch(rf"http://127\.0\.0\.1:{server.port}/\?token=[A-Za-z0-9_-]{{32}}", server.url)
        assert ReviewServer(run_dir, port=0, reviewer="carol").token != server.token  # fresh per session
    finally:
        server.socket.close()
    with pytest.raises(UserError, match="not an `llm-aug augment` output folder"):
        ReviewServer(run_dir.parent / "nothing", port=0, reviewer="carol")
    for bad, message in (("x" * 65, "1 to 64 characters"), ("a\tb", "control characters"), (" ", "1 to 64")):
        with pytest.raises(UserError, match=f"--reviewer .*{message}"):
            ReviewServer(run_dir, port=0, reviewer=bad)


def test_review_run_is_the_serve_command_and_subcommands_still_work(run_dir):
    group = get_command(cli_app).commands["review"]
    for args, command in ((["RUN", "--port", "9"], "serve"), (["--port", "9", "RUN"], "serve"),
                          (["serve", "RUN"], "serve"), (["status", "RUN"], "status"),
                          (["export", "RUN", "--reviewer", "a"], "export")):
        ctx = group.make_context("review", list(args))
        assert ctx._protected_args == [command], args
    res = invoke("review", "RUN", "--port", "not-a-number")
    assert res.exit_code == 2 and "--port" in res.output


def test_review_status_prints_progress_and_kappa(run_dir):
    alice, bob = client(run_dir, "alice"), client(run_dir, "bob")
    ids = items(alice)[:4]
    for i in ids:
        decide(alice, i, "accept")
        decide(bob, i, "accept")
    decide(bob, ids[0], "reject", reason="off topic")
    out = assert_ok(invoke("review", "status", run_dir)).stdout
    assert "9 decisions" in out and "reviewers: alice, bob" in out
    assert "reviewer alice" in out and "reviewer bob" in out
    assert re.search(r"agreement alice / bob: 4 posts decided by both, 75\.0% agree, kappa", out), out


def test_a_decision_that_cannot_be_written_is_an_error_not_an_ack(run_dir):
    c = client(run_dir)
    row = items(c)[0]
    (run_dir / REVIEW_FILE).mkdir()  # the log cannot be opened for appending
    res = decide(c, row, "accept")
    assert res.status_code == 500 and res.json()["error"].startswith("not saved: ") and REVIEW_FILE in res.text
    assert c.get(f"/api/items/{row}").json()["mine"] is None


def test_review_export_prints_the_balance_and_the_files(run_dir):
    c = client(run_dir)
    ids = items(c)
    decide(c, ids[0], "accept")
    decide(c, ids[1], "reject", reason="near copy")
    out = assert_ok(invoke("review", "export", run_dir)).stdout
    assert out.startswith(f"{run_dir}: kept 1 synthetic posts (relabelled 0), rejected 1, undecided {len(ids) - 2}")
    assert re.search(r"^level +original +generated +accepted", out, re.M)
    assert f"wrote {run_dir / 'corpus.tsv'}" in out and (run_dir / "review-report.md").is_file()


def test_the_cli_does_not_load_the_web_stack_until_serving():
    code = ("import sys\nfrom llm_aug.cli import app\nfrom typer.main import get_command\nget_command(app)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'uvicorn', 'httpx', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_corrupt_review_log_is_refused_at_start_and_answered_with_its_line(run_dir):
    c = client(run_dir)
    row = items(c)[0]
    assert decide(c, row, "accept").status_code == 200
    with (run_dir / REVIEW_FILE).open("a", encoding="utf-8") as fh:  # a hand edit gone wrong
        fh.write('{"row_id": "%s", "decision": "maybe", "reviewer": "bob"}\n' % row)
    for path in ("/api/queue", "/api/status", f"/api/items/{row}"):
        res = c.get(path)
        assert res.status_code == 500 and f"{REVIEW_FILE}:2: invalid decision" in res.json()["error"], path
    with pytest.raises(UserError, match=rf"{REVIEW_FILE}:2: invalid decision"):
        ReviewServer(run_dir, port=0, reviewer="carol")
    res = invoke("review", run_dir, "--port", "0", "--no-open")  # in process: the UserError main prints
    assert isinstance(res.exception, UserError) and f"{REVIEW_FILE}:2: invalid decision" in str(res.exception)


def test_the_browser_is_opened_on_a_private_launcher_not_on_the_token_url(monkeypatch):
    import stat

    from llm_aug.jobs.review import server

    opened = []
    monkeypatch.setattr(server.webbrowser, "open", opened.append)
    url = f"http://127.0.0.1:8765/?token={TOKEN}"
    page = server.open_in_browser(url)
    try:
        assert opened == [page.as_uri()] and TOKEN not in opened[0]  # a browser's argv is readable by all (ps)
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
        assert f'url={url}"' in page.read_text(encoding="utf-8")
    finally:
        page.unlink()
