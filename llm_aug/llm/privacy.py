"""Where posts may be sent, and keeping API keys out of logs, errors and files.

The posts this toolkit handles are sensitive (suicide-risk data), so an endpoint that
is not on this machine or a private network is refused unless the user opts in with
``allow_remote``. API keys are registered here when a backend is built; every log
record of the ``llm_aug`` logger tree and every backend error message passes through
:func:`redact`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from urllib.parse import urlsplit

from llm_aug.core.errors import UserError

REDACTED = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
_MIN_SECRET_LEN = 6  # shorter "keys" (e.g. "x", "EMPTY") would redact ordinary words


class RemoteNotAllowed(UserError):
    """The base URL points outside this machine and private networks."""


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` (and so logging) hides it."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` by ``***``."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites a record's message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = redact(message)
            if clean != message or record.exc_info:
                record.msg, record.args = clean, ()
            if record.exc_info and record.exc_info[1] is not None:
                # Tracebacks are formatted later from the exception: format now, redacted.
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def install_log_filter(target: logging.Logger) -> logging.Logger:
    """Attach :class:`RedactingFilter` to ``target`` (idempotent) and return it.

    Logger filters do not apply to records propagated from child loggers, so each
    module that may log request details installs it on its own logger.
    """
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
    return target


def _is_private(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    return ip.is_loopback or ip.is_private or ip.is_link_local


def host_is_local(host: str) -> bool:
    """True for loopback/private IP literals, ``localhost``, and names resolving only there."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _is_private(host)
    except ValueError:
        pass  # a name, not an IP literal
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # cannot tell where it goes: treat as remote
    return bool(infos) and all(_is_private(str(info[4][0])) for info in infos)


def check_base_url(base_url: str, *, allow_remote: bool = False) -> None:
    """Refuse a base URL outside loopback/private networks unless ``allow_remote``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"base URL must look like http(s)://host[:port]/path, got {base_url!r}")
    if allow_remote or host_is_local(parts.hostname):
        return
    raise RemoteNotAllowed(
        f"refusing to send posts to {parts.hostname}: it is not this machine or a private "
        "network. Pass --allow-remote (config: allow_remote: true) if this is intended."
    )

