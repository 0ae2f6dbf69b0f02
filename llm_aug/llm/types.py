"""Core types of the LLM runtime: requests, generations, the Backend protocol and its errors.

Every LLM call in the toolkit is a :class:`ChatRequest` handed to a :class:`Backend`
(usually through :class:`llm_aug.llm.runner.Runner`), which answers with one
:class:`Generation` per requested sample.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from llm_aug.core.errors import UserError

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    content: str


class SamplingParams(BaseModel):
    """Decoding settings; ``n`` samples per prompt, ``seed`` for reproducible sampling."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = Field(1, ge=1)
    top_logprobs: int | None = Field(None, ge=0, le=20, description="ask for the top-k alternatives per token")


class ChatRequest(BaseModel):
    """One prompt with a stable ``id`` (the item id carried into every result row)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    messages: tuple[Message, ...]
    params: SamplingParams = SamplingParams()
    json_schema: dict[str, Any] | None = None


class Generation(BaseModel):
    """One sample of one request, with the backend's token counts.

    ``prompt_tokens`` is the request's prompt count on every sample;
    accounting counts it once per request (index 0).
    """

    model_config = ConfigDict(extra="forbid")
    request_id: str
    index: int
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Per generated token (first few only): (sampled token, {alternative token: logprob}).
    logprobs: list[tuple[str, dict[str, float]]] | None = None


@runtime_checkable
class Backend(Protocol):
    """What the runner needs from a backend. Results come back in input order."""

    name: str
    model: str

    async def generate(self, batch: Sequence[ChatRequest]) -> list[list[Generation]]:
        """Return ``params.n`` generations per request, or raise a :class:`BackendError`."""
        ...


class BackendError(Exception):
    """A failed backend call. ``retryable`` tells the runner whether to try again."""

    retryable = False
    #: The name results rows and run summaries give this error, when not its class name
    #: (see :func:`error_name`).
    reported_as: ClassVar[str | None] = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(BackendError):
    """HTTP 429 or an equivalent; ``retry_after`` seconds when the server said so."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None,
                 status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(BackendError):
    """HTTP 5xx: the server failed; trying again may work."""

    retryable = True


class Timeout(BackendError):
    """No complete answer within the time limit."""

    retryable = True


class ConnectionDropped(BackendError):
    """The connection failed or closed before a complete response arrived."""

    retryable = True


class Unreachable(ConnectionDropped):
    """No connection could be made at all: refused, unknown host, no route.

    Retryable like a dropped connection (a restarting server comes back), but the
    runner stops the run when it happens before any request succeeded, or too many
    times in a row (see :class:`llm_aug.llm.run_state.Breaker`).
    """


class MalformedResponse(BackendError):
    """A response that is not the expected JSON shape (bad JSON, HTML error page, no choices).

    Retried: in practice these come from proxies and overloaded servers and pass.
    """

    retryable = True


class BadRequest(BackendError):
    """HTTP 4xx other than 401/403/408/429 (400, 404, 422, ...): the request itself is wrong;
    retrying cannot help."""


class NotFound(BadRequest):
    """HTTP 404: no such path, model, file or batch. Every request to this server would get
    it alike (a wrong ``--model`` or ``--base-url``), so it stops a run."""

    reported_as = "BadRequest"


class AuthError(BackendError):
    """HTTP 401/403: missing or rejected credentials."""


class Unauthorized(AuthError):
    """HTTP 401: no credentials, or the key was not accepted."""

    reported_as = "AuthError"


class Forbidden(AuthError):
    """HTTP 403: the key was accepted but may not do this."""

    reported_as = "AuthError"


class Redirected(BackendError):
    """HTTP 3xx: the server points elsewhere. Never followed by any transport: a redirect
    could carry the posts to a host the privacy check never saw. The base URL is wrong."""


def error_name(exc: BaseException) -> str:
    """What results rows and run summaries call ``exc``: its class name, except that the
    status-specific HTTP errors (:class:`NotFound`, :class:`Unauthorized`,
    :class:`Forbidden`) keep their family's name, so outputs read as they did before those
    types existed."""
    return getattr(exc, "reported_as", None) or type(exc).__name__


class RunAborted(UserError):
    """The runner stopped a run that could not succeed (server unreachable, key or model rejected).

    Shown by the CLI as one line, exit code 2. Rows that finished before the stop are
    in the results file (``saved`` of them in ``path``); rerunning resumes from them.
    """

    def __init__(self, message: str, *, cause: BackendError, saved: int | None = None,
                 path: Path | None = None) -> None:
        super().__init__(message)
        self.cause, self.saved, self.path = cause, saved, path


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the ``saved`` rows finished before it are in ``path``."""

    def __init__(self, saved: int | None, path: Path | None) -> None:
        super().__init__(f"{saved} rows saved to {path}" if path is not None else "interrupted")
        self.saved, self.path = saved, path


_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """Rough token count without a tokenizer: ~1 per CJK character, ~1 per 4 other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Rough prompt size of a chat, with a few tokens of per-message framing."""
    return sum(estimate_tokens(m.content) + 4 for m in messages)


def user_messages(*contents: str, system: str | None = None) -> tuple[Message, ...]:
    """Shorthand: an optional system message followed by user messages."""
    head = (Message(role="system", content=system),) if system else ()
    return head + tuple(Message(role="user", content=c) for c in contents)


class ResultRow(BaseModel):
    """One line of a results file: the item id, provenance, samples or the final error."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    id: str
    backend: str
    model: str
    request_hash: str
    generations: list[Generation] = Field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the item ended in an error."""
        return self.error is None

    @property
    def texts(self) -> list[str]:
        """The samples' texts, in index order."""
        return [g.text for g in self.generations]


class RunSummary(BaseModel):
    """Counts, usage and cost of a run, for the manifest; ``rows`` in input order."""

    model_config = ConfigDict(protected_namespaces=())
    backend: str
    model: str
    n_items: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_resumed: int = Field(0, description="rows kept from an earlier run's results file")
    n_cached: int = Field(0, description="items answered from the request cache")
    requests_made: int = Field(0, description="backend requests, retries included")
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    wall_s: float = 0.0
    errors: dict[str, int] = Field(default_factory=dict, description="final errors by type")
    rows: list[ResultRow] = Field(default_factory=list, exclude=True, repr=False)

    def to_manifest(self) -> dict[str, Any]:
        """Everything but the rows, JSON-ready."""
        return self.model_dump(mode="json")


class DryRunEstimate(BaseModel):
    """What a run would request, without calling the backend."""

    n_items: int
    n_resumed: int
    n_cached: int
    n_requests: int
    prompt_tokens: int = Field(description="estimated from text length")
    completion_tokens_max: int = Field(description="max_tokens x n over the requests")
    cost_usd_max: float | None
