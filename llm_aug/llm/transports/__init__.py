"""Transports: how OpenAI-compatible backends (and the batch client) put requests on the wire.

:class:`AiohttpTransport` (``client="http"``, alias ``"aiohttp"``; the default) or
:class:`SDKTransport` (``client="sdk"``, the ``openai`` package), both behind the
:class:`Transport` protocol; :func:`make_transport` builds one from backend settings.
"""

from __future__ import annotations

from typing import Mapping

from pydantic import SecretStr

from llm_aug.llm.settings import ClientKind
from llm_aug.llm.transports.aiohttp_transport import AiohttpTransport
from llm_aug.llm.transports.base import FormField, HTTPRequest, HTTPResponse, Transport
from llm_aug.llm.transports.sdk import SDKTransport

__all__ = ["AiohttpTransport", "FormField", "HTTPRequest", "HTTPResponse", "SDKTransport",
           "Transport", "make_transport"]


def make_transport(kind: ClientKind, base_url: str, headers: Mapping[str, str] | None = None,
                   timeout_s: float = 60.0, max_connections: int = 64,
                   api_key: SecretStr | None = None) -> Transport:
    """The transport of ``kind`` for ``base_url``; ``api_key`` is sent as a Bearer token."""
    if kind == "sdk":  # the SDK writes its own Authorization header from the key
        return SDKTransport(base_url, api_key=api_key, headers=headers, timeout_s=timeout_s,
                            max_connections=max_connections)
    if kind not in ("http", "aiohttp"):
        raise ValueError(f"unknown client {kind!r}; known: 'http' (alias 'aiohttp'), 'sdk'")
    all_headers = dict(headers or {})
    if api_key is not None:
        all_headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return AiohttpTransport(base_url, headers=all_headers, timeout_s=timeout_s,
                            max_connections=max_connections)
