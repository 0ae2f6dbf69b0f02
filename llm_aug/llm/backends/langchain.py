"""Adapter from any langchain-core ``BaseChatModel`` to the Backend protocol.

Sampling settings usually live on the chat model itself (``ChatX(temperature=...)``);
with ``pass_params=True`` temperature, top_p, max_tokens and seed are also passed as
call keywords, which OpenAI-style models accept. ``n`` samples are ``n`` conversations
in one ``agenerate`` call. JSON schemas are not forwarded (use the model's own
structured-output support and parse the text).
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import Field

from llm_aug.llm.backends.base import BaseBackend
from llm_aug.llm.http_errors import error_for_status
from llm_aug.llm.privacy import redact
from llm_aug.llm.settings import BackendSettings
from llm_aug.llm.types import (
    BackendError,
    ChatRequest,
    ConnectionDropped,
    Generation,
    Message,
    Timeout,
    estimate_prompt_tokens,
    estimate_tokens,
)


def _to_langchain(messages: tuple[Message, ...]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in messages]


def _error(exc: Exception) -> BackendError:
    """Map a provider exception by its HTTP status, where it has one."""
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None)
    message = redact(f"{type(exc).__name__}: {exc}")[:300]
    if isinstance(status, int) and status >= 400:  # the same types as the openai backend's
        return error_for_status(status, message)
    if isinstance(exc, TimeoutError):
        return Timeout(message)
    if isinstance(exc, ConnectionError):
        return ConnectionDropped(message)
    return BackendError(message)


class LangChainBackend(BaseBackend):
    """Wraps a ``BaseChatModel``; ``model`` defaults to the chat model's own model name."""

    name = "langchain"

    def __init__(self, chat_model: Any, *, model: str | None = None,
                 pass_params: bool = False) -> None:
        model = model or getattr(chat_model, "model_name", None) or getattr(
            chat_model, "model", None) or type(chat_model).__name__
        super().__init__(str(model))
        self.chat_model, self.pass_params = chat_model, pass_params

    @classmethod
    def from_import_path(cls, path: str, *, model: str | None = None,
                         **kwargs: Any) -> "LangChainBackend":
        """Build ``module:Class(**kwargs)``, e.g. ``langchain_openai:ChatOpenAI``."""
        module_name, _, class_name = path.partition(":")
        chat_cls = getattr(importlib.import_module(module_name), class_name)
        return cls(chat_cls(**kwargs), model=model)

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        p = request.params
        kwargs: dict[str, Any] = {}
        if self.pass_params:
            kwargs = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens}
            if p.seed is not None:
                kwargs["seed"] = p.seed
        conversation = _to_langchain(request.messages)
        try:
            result = await self.chat_model.agenerate(
                [conversation] * p.n, stop=list(p.stop) or None, **kwargs)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - providers raise their own types
            raise _error(exc) from exc
        return [self._generation(request, i, gens[0]) for i, gens in enumerate(result.generations)]

    @staticmethod
    def _generation(request: ChatRequest, index: int, gen: Any) -> Generation:
        message = getattr(gen, "message", None)
        text = gen.text if isinstance(gen.text, str) else str(gen.text)
        usage = getattr(message, "usage_metadata", None) or {}
        info = {**(getattr(message, "response_metadata", None) or {}),
                **(gen.generation_info or {})}
        return Generation(
            request_id=request.id, index=index, text=text,
            finish_reason=str(info.get("finish_reason") or "stop"),
            prompt_tokens=int(usage.get("input_tokens")
                              or estimate_prompt_tokens(request.messages)),
            completion_tokens=int(usage.get("output_tokens") or estimate_tokens(text)))


class LangChainBackendConfig(BackendSettings):
    """Any langchain-core chat model, by import path ``module:Class`` and its kwargs."""

    kind: Literal["langchain"] = "langchain"
    chat_model: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> LangChainBackend:
        """``chat_model(**kwargs)`` imported and wrapped in a :class:`LangChainBackend`."""
        return LangChainBackend.from_import_path(self.chat_model, model=self.model, **self.kwargs)
