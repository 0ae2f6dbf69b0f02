"""LLM backends (one module each) and :func:`make_backend`, the factory from config.

Heavy engines (vLLM, llama.cpp, LangChain models) are imported only when built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

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
    """Build a backend from a backend config (model or dict with a ``kind`` key).

    Each kind's config class (declared in its backend's module) builds its own backend.
    """
    from pydantic import TypeAdapter

    from llm_aug.llm.config import BackendConfig, backend_kinds
    from llm_aug.llm.settings import BackendSettings

    if isinstance(config, Mapping):
        config = TypeAdapter(BackendConfig).validate_python(dict(config))
    if not isinstance(config, BackendSettings):
        raise ValueError(f"unknown backend kind {getattr(config, 'kind', None)!r}; "
                         f"known: {backend_kinds()}")
    return config.build()
