"""The review web app: a Starlette JSON API and one page over an augment run.

Every request must carry the session token (``?token=`` or the ``X-Review-Token``
header; compared in constant time) and a Host of 127.0.0.1 or localhost (a page on
another site that rebinds its DNS name to 127.0.0.1 still sends its own Host), else 403.
A decision is appended to RUN/review.jsonl (flushed and fsynced by
:class:`~llm_aug.jobs.review.store.ReviewLog`) before its response is sent, so
whatever the page shows as saved is on disk. Pages and assets are this package's own
files (``static/``): nothing is fetched from elsewhere.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from llm_aug.core.errors import UserError
from llm_aug.core.files import disk_full_message, is_disk_full
from llm_aug.jobs.review.items import ReviewRun, load_review_run
from llm_aug.jobs.review.queue_view import QueueFilter, select
from llm_aug.jobs.review.status import agreement, disagreeing_rows, progress
from llm_aug.jobs.review.store import REJECT_REASONS, REVIEW_FILE, Decision, ReviewLog, latest, parse_decision

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost"})
TOKEN_SLOT = "__TOKEN__"
QUEUE_ROWS = 500  # summaries sent with a queue (all its ids are sent)
EXCERPT = 80
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


class BadRequest(Exception):
    """A request the API refuses (400, or ``status``), with a message for the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def host_name(host: str) -> str:
    """The name part of a Host header (``127.0.0.1:8765`` -> ``127.0.0.1``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


class Guard:
    """ASGI middleware: Host and token checks on every request, security headers on every response."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # no websockets
        headers = Headers(scope=scope)
        refusal = self.refusal(headers, QueryParams(scope.get("query_string", b"")))
        if refusal is not None:
            await PlainTextResponse(refusal, status_code=403, headers={"cache-control": "no-store"})(
                scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    def refusal(self, headers: Headers, query: QueryParams) -> str | None:
        """Why the request is refused, or None."""
        if host_name(headers.get("host", "")) not in ALLOWED_HOSTS:
            return "forbidden: this server answers only to http://127.0.0.1 or http://localhost"
        given = query.get("token") or headers.get("x-review-token") or ""
        if not secrets.compare_digest(given.encode(), self.token):
            return ("forbidden: missing or wrong token; open the URL the review server printed "
                    "(a restarted server prints a new one)")
        return None


class ReviewState:
    """The run under review, its decisions log and this session's reviewer."""

    def __init__(self, run: ReviewRun, reviewer: str) -> None:
        self.run, self.reviewer = run, reviewer
        self.log = ReviewLog(Path(run.run) / REVIEW_FILE)
        self.levels = {lv.level for lv in run.levels}
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._decisions: list[Decision] = []

    def decisions(self) -> list[Decision]:
        """Every reviewer's decisions; re-read when the file changed (another reviewer's server)."""
        path = Path(self.run.run) / REVIEW_FILE
        with self._lock:
            try:
                st = path.stat()
                stamp = (st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                stamp = (0, 0)
            if stamp != self._stamp:
                self._decisions = self.log.read() if stamp != (0, 0) else []
                self._stamp = stamp
            return list(self._decisions)

    def mine(self, decisions: list[Decision]) -> dict[str, Decision]:
        """This reviewer's latest decision per row."""
        return {row: d for (row, who), d in latest(decisions).items() if who == self.reviewer}

    def decide(self, body: Any) -> Decision:
        """Validate a posted decision against the run and append it (fsynced) to the log."""
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        try:
            item = self.run.item(str(body.get("row_id")))
        except KeyError:
            raise BadRequest(f"no synthetic post {body.get('row_id')!r} in this run", 404) from None
        kind = body.get("decision")
        # accept keeps the row's level; one given must be that level (check refuses another)
        level = body.get("level", item.level) if kind == "accept" else body.get("level") if kind == "relabel" else None
        try:
            decision = self.run.check(parse_decision({
                "row_id": item.id, "decision": kind, "level": level, "reviewer": self.reviewer,
                "reason": body.get("reason") if kind == "reject" else None}))
        except UserError as exc:
            raise BadRequest(str(exc)) from None
        with self._lock:
            return self.log.append(decision)


# --- endpoints ----------------------------------------------------------------------


def _state(request: Request) -> ReviewState:
    return request.app.state.review


def page(request: Request) -> Response:
    """The app's one page, its asset URLs carrying the token."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    token = request.query_params.get("token") or request.headers.get("x-review-token", "")
    return HTMLResponse(text.replace(TOKEN_SLOT, token))


def asset(request: Request) -> Response:
    """A file of ``static/`` (only its own files, by name)."""
    name = request.path_params["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in MEDIA_TYPES or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix])


def session(request: Request) -> Response:
    """The run, its levels with definitions, the reasons, the methods and score names."""
    state = _state(request)
    items = state.run.items
    return JSONResponse({
        "run": str(state.run.run), "task": state.run.task, "reviewer": state.reviewer,
        "levels": [lv.model_dump() for lv in state.run.levels], "reasons": list(REJECT_REASONS),
        "methods": sorted({it.method for it in items}), "scores": sorted({k for it in items for k in it.scores}),
        "total": len(items)})


def item(request: Request) -> Response:
    """One post in full, with this reviewer's latest decision on it (or null)."""
    state = _state(request)
    try:
        found = state.run.item(request.path_params["row_id"])
    except KeyError:
        return _error(f"no synthetic post {request.path_params['row_id']!r} in this run", 404)
    mine = state.mine(state.decisions()).get(found.id)
    return JSONResponse({"item": found.model_dump(mode="json"), "mine": _dump(mine)})


def queue(request: Request) -> Response:
    """The posts matching the filters (all ids, the first summaries) and where to resume."""
    state = _state(request)
    try:
        filters = QueueFilter.from_query(request.query_params, state.levels)
    except ValueError as exc:
        return _error(str(exc))
    decisions = state.decisions()
    mine = state.mine(decisions)
    rows = select(state.run.items, filters, mine, disagreeing_rows(decisions))
    summaries = [{"id": it.id, "level": it.level, "method": it.method, "scores": it.scores,
                  "excerpt": it.text[:EXCERPT], "mine": _dump(mine.get(it.id))} for it in rows[:QUEUE_ROWS]]
    # decided: for the page's "next undecided" past the listed summaries
    return JSONResponse({"ids": [it.id for it in rows], "rows": summaries, "total": len(rows),
                         "decided": [it.id for it in rows if it.id in mine],
                         "resume": _resume([it.id for it in rows], mine)})


def status(request: Request) -> Response:
    """Progress per level (this reviewer's and everyone's) and agreement per reviewer pair."""
    state = _state(request)
    decisions = state.decisions()
    return JSONResponse({
        "reviewer": state.reviewer, "reviewers": sorted({d.reviewer for d in decisions}),
        "mine": [p.model_dump() for p in progress(state.run, decisions, state.reviewer)],
        "all": [p.model_dump() for p in progress(state.run, decisions, None)],
        "agreement": [pair.model_dump(mode="json") for pair in agreement(state.run, decisions)]})


async def decide(request: Request) -> Response:
    """Append one decision; 200 only once it is on disk."""
    try:
        body = await request.json()
    except ValueError:
        return _error("expected a JSON body")
    state = _state(request)
    try:
        saved = await run_in_threadpool(state.decide, body)
    except BadRequest as exc:
        return _error(str(exc), exc.status)
    except (UserError, OSError) as exc:  # the log cannot be written (disk full, permissions): say so, the page retries
        message = disk_full_message(exc) if isinstance(exc, OSError) and is_disk_full(exc) else str(exc)
        logger.error("decision not saved to %s: %s", state.log.path, message)
        return _error(f"not saved: {message}", 500)
    return JSONResponse({"saved": _dump(saved)})


def _dump(decision: Decision | None) -> dict | None:
    return None if decision is None else decision.model_dump(mode="json")


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _log_unreadable(request: Request, exc: Exception) -> Response:
    """review.jsonl turned unreadable while serving (a bad hand edit): its line, not a bare 500."""
    logger.error("%s", exc)
    return _error(str(exc), 500)


def _resume(ids: list[str], mine: dict[str, Decision]) -> str | None:
    """The first post this reviewer has not decided; else the first skipped; else None."""
    undecided = next((i for i in ids if i not in mine), None)
    if undecided is not None:
        return undecided
    return next((i for i in ids if mine[i].decision == "skip"), None)


def make_app(run: str | Path | ReviewRun, token: str, reviewer: str) -> Any:
    """The review app for ``run`` (a folder or a loaded :class:`ReviewRun`), guarded by ``token``."""
    if len(token) < 16:
        raise ValueError("the session token must be at least 16 characters")
    review_run = run if isinstance(run, ReviewRun) else load_review_run(run)
    routes = [Route("/", page), Route("/static/{name}", asset),
              Route("/api/session", session), Route("/api/queue", queue), Route("/api/status", status),
              Route("/api/items/{row_id:path}", item), Route("/api/decisions", decide, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={UserError: _log_unreadable})
    app.state.review = ReviewState(review_run, reviewer)
    return Guard(app, token)
