"""LLM backends (one module each) and :func:`make_backend`, the factory from config.

Heavy engines (vLLM, llama.cpp, LangChain models) are imported only when built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from llm_aug.llm.backends.base import BaseBackend
from llm_aug.llm.types import (
    AuthError,
    Backend,
    BackendError,
    BadRequest,
    ConnectionDropped,
    MalformedResponse,
    RateLimited,
    ServerError,
    Timeout,
)

if TYPE_CHECKING:
    from llm_aug.llm.config import BackendConfig

__all__ = [
    "AuthError", "Backend", "BackendError", "BadRequest", "BaseBackend", "ConnectionDropped",
    "MalformedResponse", "RateLimited", "ServerError", "Timeout", "make_backend",
]


def make_backend(config: "BackendConfig | Mapping[str, Any]") -> Backend:
    """Build a backend from a backend config (model or dict with a ``kind`` key)."""
    from pydantic import TypeAdapter

    from llm_aug.llm.config import BackendConfig

    if isinstance(config, Mapping):
        config = TypeAdapter(BackendConfig).validate_python(dict(config))
    kind = config.kind
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown backend kind {kind!r}; known: {sorted(_BUILDERS)}")
    return builder(config)


def _openai(c: Any) -> Backend:
    from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
    return OpenAICompatBackend(
        c.model, c.base_url, api_key=c.api_key, client=c.client,
        max_connections=c.max_connections, timeout_s=c.timeout_s,
        structured_output=c.structured_output, max_tokens_field=c.max_tokens_field,
        extra_body=c.extra_body, allow_remote=c.allow_remote)


def _vllm(c: Any) -> Backend:
    from llm_aug.llm.backends.vllm import VLLMBackend
    return VLLMBackend(c.model, engine_kwargs=c.engine_kwargs, batch_size=c.batch_size)


def _llamacpp(c: Any) -> Backend:
    from llm_aug.llm.backends.llamacpp import LlamaCppBackend
    return LlamaCppBackend(c.model, model_path=c.model_path, n_ctx=c.n_ctx,
                           n_threads=c.n_threads, chat_format=c.chat_format)


def _langchain(c: Any) -> Backend:
    from llm_aug.llm.backends.langchain import LangChainBackend
    return LangChainBackend.from_import_path(c.chat_model, model=c.model, **c.kwargs)


def _fake(c: Any) -> Backend:
    from llm_aug.llm.backends.fake import FakeBackend
    return FakeBackend(c.replies, model=c.model)


_BUILDERS: dict[str, Callable[[Any], Backend]] = {
    "openai": _openai, "vllm": _vllm, "llamacpp": _llamacpp, "langchain": _langchain,
    "fake": _fake,
}
