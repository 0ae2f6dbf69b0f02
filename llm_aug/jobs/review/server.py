"""The review app's server: uvicorn on 127.0.0.1 only, a fresh random token per session.

The socket is bound here, before uvicorn starts, so a busy port is a one-line
:class:`~llm_aug.core.errors.UserError` and the URL (with its token) is known before the
first request. Access logging is off: request lines carry the token.
"""

from __future__ import annotations

import errno
import getpass
import html
import logging
import os
import secrets
import socket
import tempfile
import webbrowser
from pathlib import Path

from llm_aug.core.errors import UserError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def default_reviewer() -> str:
    """The login name ($USER, else the account name); a UserError when none can be found."""
    name = os.environ.get("USER") or os.environ.get("USERNAME")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = ""
    if not name.strip():
        raise UserError("no reviewer name: pass --reviewer NAME (or set $USER)")
    return check_reviewer(name)


def check_reviewer(name: str) -> str:
    """``name`` stripped, if a decision can carry it (1-64 characters, no control characters); else UserError."""
    from pydantic import ValidationError

    from llm_aug.jobs.review.store import Decision

    try:
        return Decision(row_id="-", decision="skip", reviewer=name).reviewer
    except ValidationError as exc:
        raise UserError(f"--reviewer {name!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: any free port); UserError when busy."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: must be 0-65535")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a restarted server may rebind at once (connections of the last one in TIME_WAIT); a
    # socket still listening on the port keeps it busy all the same
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {HOST} is in use (another review server?); "
                            "pick another with --port") from None
        if exc.errno == errno.EACCES:
            raise UserError(f"port {port} on {HOST} is not allowed for this user; pick one above 1023 "
                            "with --port") from None
        raise
    sock.set_inheritable(True)
    return sock


class ReviewServer:
    """The app for one run, bound to its port; :meth:`run` serves until Ctrl-C or SIGTERM."""

    def __init__(self, run: str | Path, *, port: int = DEFAULT_PORT, reviewer: str | None = None) -> None:
        from llm_aug.jobs.review.app import make_app
        from llm_aug.jobs.review.items import load_review_run
        from llm_aug.jobs.review.store import REVIEW_FILE, ReviewLog

        self.reviewer = check_reviewer(reviewer) if reviewer is not None else default_reviewer()  # '' refused
        self.review_run = load_review_run(run)  # a bad run or log fails before the port is taken
        ReviewLog(Path(run) / REVIEW_FILE).read()
        self.token = secrets.token_urlsafe(24)
        self.app = make_app(self.review_run, self.token, self.reviewer)
        self.socket = bind(port)
        self.port = self.socket.getsockname()[1]

    @property
    def n_items(self) -> int:
        """Synthetic posts under review."""
        return len(self.review_run.items)

    @property
    def url(self) -> str:
        """The page's address, token included (a secret for this session: do not log it)."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def run(self, *, open_browser: bool = False) -> None:
        """Serve on the bound socket until stopped; the browser opens on the page if asked."""
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                server_header=False, date_header=False, timeout_graceful_shutdown=3)
        server = uvicorn.Server(config)
        launcher = open_in_browser(self.url) if open_browser else None
        logger.info("review server for %s on %s:%d", self.review_run.run, HOST, self.port)
        try:
            server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            if launcher is not None:
                launcher.unlink(missing_ok=True)


def launcher_page(url: str) -> Path:
    """A private (0600) temporary page that redirects to ``url``.

    The browser is started on this file, not on ``url``: a browser's command line is
    readable by every local user (``ps``), and the URL carries the session's token.
    """
    fd, name = tempfile.mkstemp(prefix="llm-aug-review-", suffix=".html")  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f'<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
                 f'<meta http-equiv="refresh" content="0;url={html.escape(url, quote=True)}">'
                 f'<title>llm-aug review</title><a href="{html.escape(url, quote=True)}">open the review</a>')
    return Path(name)


def open_in_browser(url: str) -> Path:
    """Open ``url`` in the default browser through :func:`launcher_page`; returns the page to remove."""
    page = launcher_page(url)
    webbrowser.open(page.as_uri())  # the socket already listens: the request waits for uvicorn
    return page


def serve(run: str | Path, *, port: int = DEFAULT_PORT, reviewer: str | None = None,
          open_browser: bool = True) -> None:
    """Serve the review app for ``run`` on 127.0.0.1:``port`` until stopped."""
    ReviewServer(run, port=port, reviewer=reviewer).run(open_browser=open_browser)
