"""A scripted backend for tests and demos: no model, no network.

Replies can be a list (cycled in call order), a dict (first key found in the last user
message, ``""`` as default key), or a callable ``(request, index) -> str``. Failures
can be injected per call to exercise retries.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Callable, Literal, Mapping, Sequence, Union

from llm_aug.llm.backends.base import BaseBackend
from llm_aug.llm.settings import BackendSettings
from llm_aug.llm.types import (
    ChatRequest,
    Generation,
    estimate_prompt_tokens,
    estimate_tokens,
)

Replies = Union[Sequence[str], Mapping[str, str], Callable[[ChatRequest, int], str]]
MaybeError = Union[Exception, None]
Failures = Union[Sequence[MaybeError], Callable[[ChatRequest, int], MaybeError]]


class FakeBackend(BaseBackend):
    """Answers from a script; counts calls; optionally fails on chosen calls.

    ``failures``: a sequence whose k-th entry (if not None) is raised on the k-th call
    to :meth:`generate_one`, or a callable ``(request, call_number) -> error or None``.
    """

    name = "fake"

    def __init__(self, replies: Replies | None = None, *, model: str = "fake",
                 failures: Failures | None = None, latency_s: float = 0.0,
                 batch_size: int = 1) -> None:
        super().__init__(model)
        self.replies: Replies = replies if replies is not None else _echo
        self.failures = failures
        self.latency_s, self.batch_size = latency_s, batch_size
        self.calls = 0
        self.seen: list[ChatRequest] = []
        self._cycle = itertools.cycle(self.replies) if _is_list(self.replies) else None

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        call = self.calls
        self.calls += 1
        self.seen.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        error = self._failure(request, call)
        if error is not None:
            raise error
        prompt = estimate_prompt_tokens(request.messages)
        texts = [self._reply(request, i) for i in range(request.params.n)]
        return [Generation(request_id=request.id, index=i, text=t, finish_reason="stop",
                           prompt_tokens=prompt, completion_tokens=estimate_tokens(t))
                for i, t in enumerate(texts)]

    def _failure(self, request: ChatRequest, call: int) -> Exception | None:
        if self.failures is None:
            return None
        if callable(self.failures):
            return self.failures(request, call)
        return self.failures[call] if call < len(self.failures) else None

    def _reply(self, request: ChatRequest, index: int) -> str:
        if self._cycle is not None:
            return next(self._cycle)
        if callable(self.replies):
            return self.replies(request, index)
        assert isinstance(self.replies, Mapping)
        last = _last_user(request)
        for key, text in self.replies.items():
            if key and key in last:
                return text
        return self.replies.get("", "")


def _is_list(replies: object) -> bool:
    return isinstance(replies, Sequence) and not isinstance(replies, (str, bytes))


def _last_user(request: ChatRequest) -> str:
    return next((m.content for m in reversed(request.messages) if m.role == "user"), "")


def _echo(request: ChatRequest, index: int) -> str:
    return f"{_last_user(request)} #{index}"


class FakeBackendConfig(BackendSettings):
    """Scripted replies for tests and demos."""

    kind: Literal["fake"] = "fake"
    model: str = "fake"
    replies: list[str] | dict[str, str] | None = None

    def build(self) -> FakeBackend:
        """A :class:`FakeBackend` answering from ``replies`` (echoing the prompt without)."""
        return FakeBackend(self.replies, model=self.model)
