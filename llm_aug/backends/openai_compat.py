"""OpenAI-compatible chat completions (OpenAI, vLLM serve, llama.cpp server, DeepSeek...).

Two request paths share payload building and response parsing:
``client="http"`` (default) sends through the lean keep-alive pool in
:mod:`llm_aug.backends.http11`; ``client="sdk"`` through the ``openai`` package. The
benchmark in docs/runtime.md chose the default.
"""

from __future__ import annotations

import json
import logging
import os
from email.utils import parsedate_to_datetime
from time import time
from typing import Any, Literal, Mapping

from pydantic import SecretStr

from llm_aug.backends.base import BaseBackend
from llm_aug.backends.http11 import HTTPPool
from llm_aug.privacy import check_base_url, install_log_filter, redact, register_secret
from llm_aug.types import (
    AuthError, BackendError, BadRequest, ChatRequest, Generation, MalformedResponse,
    RateLimited, ServerError, Timeout, estimate_prompt_tokens, estimate_tokens,
)

logger = install_log_filter(logging.getLogger(__name__))
API_KEY_ENV = ("LLM_AUG_API_KEY", "OPENAI_API_KEY")
StructuredMode = Literal["response_format", "structured_outputs", "guided_json", "none"]
ClientKind = Literal["http", "sdk"]


def api_key_from_env(names: tuple[str, ...] = API_KEY_ENV) -> SecretStr | None:
    """The first non-empty of the given environment variables, as a secret."""
    for name in names:
        if os.environ.get(name):
            return SecretStr(os.environ[name])
    return None


class OpenAICompatBackend(BaseBackend):
    """Chat completions over HTTP; see the module docstring for the two clients."""

    name = "openai"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", *,
                 api_key: SecretStr | str | None = None, client: ClientKind = "http",
                 max_connections: int = 64, timeout_s: float = 60.0,
                 structured_output: StructuredMode = "response_format",
                 max_tokens_field: str = "max_tokens", extra_body: Mapping[str, Any] | None = None,
                 allow_remote: bool = False) -> None:
        super().__init__(model)
        check_base_url(base_url, allow_remote=allow_remote)
        key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        key = key or api_key_from_env()
        register_secret(key.get_secret_value() if key else None)
        self.base_url, self.client_kind = base_url.rstrip("/"), client
        self.structured_output, self.max_tokens_field = structured_output, max_tokens_field
        self.extra_body = dict(extra_body or {})
        if client == "sdk":
            from llm_aug.backends.openai_sdk import SDKTransport
            self._transport: Any = SDKTransport(self.base_url, key, timeout_s, max_connections)
        else:
            headers = {"User-Agent": "llm-aug"}
            if key is not None:
                headers["Authorization"] = f"Bearer {key.get_secret_value()}"
            self._transport = HTTPPool(self.base_url, max_connections=max_connections,
                                       headers=headers, timeout_s=timeout_s)

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        payload = build_payload(self.model, request, self.structured_output,
                                self.max_tokens_field, self.extra_body)
        if self.client_kind == "sdk":
            status, headers, body = await self._transport.complete(payload)
        else:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            response = await self._transport.post_json("/chat/completions", data)
            status, headers, body = response.status, response.headers, response.body
        if status >= 400:
            raise error_from_status(status, headers, body)
        return parse_completion(request, body, headers.get("content-type", ""))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.base_url,
                "client": self.client_kind}

    async def aclose(self) -> None:
        await self._transport.aclose()


def build_payload(model: str, request: ChatRequest, structured: StructuredMode = "response_format",
                  max_tokens_field: str = "max_tokens",
                  extra_body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of one chat-completions call."""
    p = request.params
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": p.temperature, "top_p": p.top_p, max_tokens_field: p.max_tokens,
    }
    if p.n != 1:
        payload["n"] = p.n
    if p.seed is not None:
        payload["seed"] = p.seed
    if p.stop:
        payload["stop"] = list(p.stop)
    if p.top_logprobs is not None:
        payload["logprobs"], payload["top_logprobs"] = True, p.top_logprobs
    schema = request.json_schema
    if schema is not None and structured == "response_format":
        payload["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": schema}}
    elif schema is not None and structured == "structured_outputs":
        payload["structured_outputs"] = {"json": schema}  # vLLM >= 0.12
    elif schema is not None and structured == "guided_json":
        payload["guided_json"] = schema  # vLLM < 0.12
    payload.update(extra_body or {})
    return payload


def parse_completion(request: ChatRequest, body: bytes, content_type: str = "") -> list[Generation]:
    """Generations from a chat-completion response body; MalformedResponse if it is not one."""
    if content_type and "json" not in content_type.lower():
        raise MalformedResponse(f"expected JSON, got {content_type.split(';')[0]} "
                                f"({redact(body[:60].decode('utf-8', 'replace'))!r})")
    try:
        data = json.loads(body)
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        texts = [(c["message"].get("content") or "", c.get("finish_reason") or "stop")
                 for c in choices]
        logprobs = [_token_logprobs(c) for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"not a chat completion: {type(exc).__name__}: "
                                f"{redact(str(exc))[:120]}") from exc
    usage = data.get("usage") or {}
    prompt = usage.get("prompt_tokens")
    prompt = int(prompt) if prompt is not None else estimate_prompt_tokens(request.messages)
    total = usage.get("completion_tokens")
    shares = _split(int(total), len(texts)) if total is not None else [
        estimate_tokens(t) for t, _ in texts]
    return [Generation(request_id=request.id, index=i, text=t, finish_reason=f,
                       prompt_tokens=prompt, completion_tokens=c, logprobs=lp)
            for i, ((t, f), c, lp) in enumerate(zip(texts, shares, logprobs))]


MAX_LOGPROB_TOKENS = 16  # a label answer is short; keep rows small


def _token_logprobs(choice: Mapping[str, Any]) -> list[tuple[str, dict[str, float]]] | None:
    """The OpenAI ``logprobs.content`` list as (token, {alternative: logprob}) pairs."""
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    out = []
    for item in content[:MAX_LOGPROB_TOKENS]:
        alts = {a["token"]: float(a["logprob"]) for a in item.get("top_logprobs") or []}
        alts.setdefault(item["token"], float(item["logprob"]))
        out.append((item["token"], alts))
    return out


def _split(total: int, parts: int) -> list[int]:
    # The API reports completion tokens per response, not per choice: share them out.
    base, rest = divmod(total, max(parts, 1))
    return [base + (1 if i < rest else 0) for i in range(parts)]


def error_from_status(status: int, headers: Mapping[str, str], body: bytes) -> BackendError:
    """Map an HTTP error status to the BackendError the runner knows how to handle."""
    message = f"HTTP {status}: {_error_message(body)}"
    if status == 429:
        return RateLimited(message, retry_after=retry_after_s(headers))
    if status == 408:
        return Timeout(message, status=status)
    if status in (401, 403):
        return AuthError(message, status=status)
    if status >= 500:
        return ServerError(message, status=status)
    return BadRequest(message, status=status)


def _error_message(body: bytes) -> str:
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
            return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None
