"""OpenAI-compatible chat completions (OpenAI, vLLM serve, llama.cpp server, DeepSeek...).

This module builds the JSON payload, maps HTTP statuses to the runtime's errors (with
:func:`~llm_aug.llm.http_errors.error_from_status`, shared with the batch client) and
parses completions; a :class:`~llm_aug.llm.transports.Transport` carries the bytes:
``client="http"`` (default, alias ``"aiohttp"``) through aiohttp, ``client="sdk"``
through the ``openai`` package. Both go through the same code here, so they give
identical generations; docs/runtime.md compares their throughput. Several base URLs
(replicas of one model) go through a :class:`~llm_aug.llm.transports.routing.RoutingTransport`:
least-loaded routing, and failover away from a dead replica.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

from pydantic import SecretStr

from llm_aug.llm.backends.base import BaseBackend
from llm_aug.llm.http_errors import (
    error_from_status,
    retry_after_s,  # noqa: F401  (its old import path)
)
from llm_aug.llm.privacy import (
    check_base_url,
    install_log_filter,
    redact,
    register_secret,
)
from llm_aug.llm.settings import ClientKind, StructuredMode, api_key_from_env
from llm_aug.llm.transports import Transport, make_transport
from llm_aug.llm.transports.routing import RoutingTransport
from llm_aug.llm.types import (
    ChatRequest,
    Generation,
    MalformedResponse,
    estimate_prompt_tokens,
    estimate_tokens,
)

logger = install_log_filter(logging.getLogger(__name__))


class OpenAICompatBackend(BaseBackend):
    """Chat completions over HTTP; see the module docstring for the two clients."""

    name = "openai"
    _PATH = "/chat/completions"  # under base_url, which ends in /v1

    def __init__(self, model: str, base_url: str | Sequence[str] = "http://127.0.0.1:8000/v1", *,
                 api_key: SecretStr | str | None = None, client: ClientKind = "http",
                 max_connections: int = 64, timeout_s: float = 60.0,
                 structured_output: StructuredMode = "response_format",
                 max_tokens_field: str = "max_tokens", extra_body: Mapping[str, Any] | None = None,
                 allow_remote: bool = False) -> None:
        super().__init__(model)
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        for url in urls:  # one remote URL without allow_remote refuses them all
            check_base_url(url, allow_remote=allow_remote)
        key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        key = key or api_key_from_env()
        register_secret(key.get_secret_value() if key else None)
        self.base_urls = [url.rstrip("/") for url in urls]
        self.base_url, self.client_kind = (self.base_urls or [""])[0], client
        self.structured_output, self.max_tokens_field = structured_output, max_tokens_field
        self.extra_body = dict(extra_body or {})
        transports = [(url, make_transport(client, url, headers={"User-Agent": "llm-aug"},
                                           timeout_s=timeout_s, max_connections=max_connections,
                                           api_key=key)) for url in self.base_urls]
        # One URL keeps its plain transport: routing is only for replicas.
        self._transport: Transport = (transports[0][1] if len(transports) == 1
                                      else RoutingTransport(transports))

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        payload = build_payload(self.model, request, self.structured_output,
                                self.max_tokens_field, self.extra_body)
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        response = await self._transport.post_json(self._PATH, data)
        if response.status >= 300:
            raise error_from_status(response.status, response.headers, response.body)
        return parse_completion(request, response.body, response.headers.get("content-type", ""))

    def describe(self) -> dict[str, Any]:
        urls = self.base_urls if len(self.base_urls) > 1 else self.base_url
        return {"backend": self.name, "model": self.model, "base_url": urls,
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
        # vLLM writes -inf (a token its structured-output grammar masked) as -9999.0:
        # such a token is no alternative, and a float -inf would not survive the results
        # file's JSON. The sampled token itself is always kept.
        alts = {a["token"]: float(a["logprob"]) for a in item.get("top_logprobs") or []
                if float(a["logprob"]) > IMPOSSIBLE_LOGPROB}
        alts.setdefault(item["token"], max(float(item["logprob"]), IMPOSSIBLE_LOGPROB))
        out.append((item["token"], alts))
    return out


IMPOSSIBLE_LOGPROB = -9999.0  # vLLM's stand-in for -inf in JSON


def _split(total: int, parts: int) -> list[int]:
    # The API reports completion tokens per response, not per choice: share them out.
    base, rest = divmod(total, max(parts, 1))
    return [base + (1 if i < rest else 0) for i in range(parts)]
