"""HTTP error statuses as the runtime's typed errors: the one mapping every HTTP caller uses.

The OpenAI-compatible backend raises what :func:`error_from_status` returns for a non-2xx
response; the batch client (``llm/batch/client.py``) maps its responses with it too and
words its one-line message from the result; the langchain backend classifies a provider
exception's status with :func:`error_for_status`. Callers then decide by type
(``isinstance(exc, NotFound)``), never by comparing status numbers.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Mapping

from llm_aug.llm.privacy import redact, without_userinfo
from llm_aug.llm.types import (
    BackendError,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    Redirected,
    ServerError,
    Timeout,
    Unauthorized,
)

_BY_STATUS: dict[int, type[BackendError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 408: Timeout,
}


def error_for_status(status: int, message: str, *,
                     retry_after: float | None = None) -> BackendError:
    """The typed error for an HTTP error status (>= 400) carrying ``message``."""
    if status == 429:
        return RateLimited(message, retry_after=retry_after)
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message, status=status)
    if status >= 500:
        return ServerError(message, status=status)
    return BadRequest(message, status=status)


def error_from_status(status: int, headers: Mapping[str, str], body: bytes) -> BackendError:
    """Map an HTTP error status (or a redirect) to the BackendError the runner knows how to handle.

    ``headers`` are lower-cased (as :class:`~llm_aug.llm.transports.base.HTTPResponse` has them).
    """
    if 300 <= status < 400:
        target = without_userinfo(headers.get("location", "")) or "nowhere"
        return Redirected(f"HTTP {status}: the server redirects to {redact(target)!r}; redirects "
                          "are not followed (they could carry the posts past the check of "
                          "--base-url): give the server's own URL", status=status)
    retry_after = retry_after_s(headers) if status == 429 else None
    return error_for_status(status, f"HTTP {status}: {error_message(body)}", retry_after=retry_after)


def error_message(body: bytes) -> str:
    """The server's ``error.message`` from a JSON error body, else the body's text; redacted."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        text = error.get("message", text) if isinstance(error, dict) else str(error or text)
    except (ValueError, AttributeError):
        pass
    return redact(text.strip())[:300]


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
