"""The ``openai`` SDK as a transport for :class:`OpenAICompatBackend` (``client="sdk"``).

The SDK sends the request (its auth, TLS, proxy handling); our own code parses the
body, so both clients give identical generations. SDK retries are off: the runner
retries.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from llm_aug.privacy import redact
from llm_aug.types import BackendError, ConnectionDropped, Timeout

# Chat-completions fields the SDK accepts as keywords; the rest goes in extra_body.
_SDK_FIELDS = {"model", "messages", "temperature", "top_p", "max_tokens",
               "max_completion_tokens", "n", "seed", "stop", "response_format"}


class SDKTransport:
    """Sends chat-completion payloads with ``openai.AsyncOpenAI``; returns raw responses."""

    def __init__(self, base_url: str, api_key: SecretStr | None, timeout_s: float,
                 max_connections: int) -> None:
        self._args = (base_url, api_key, timeout_s, max_connections)
        self._client: Any = None
        self._loop: Any = None

    def _get_client(self) -> Any:
        import asyncio

        import openai

        try:
            import httpx2 as hx  # openai >= 3 sends through httpx2
        except ImportError:
            import httpx as hx

        loop = asyncio.get_running_loop()
        if self._client is None or loop is not self._loop:
            base_url, key, timeout_s, conns = self._args
            limits = hx.Limits(max_connections=conns, max_keepalive_connections=conns)
            self._client = openai.AsyncOpenAI(
                base_url=base_url, timeout=timeout_s, max_retries=0,
                # The SDK insists on a key; local servers ignore it.
                api_key=key.get_secret_value() if key else "EMPTY",
                http_client=openai.DefaultAsyncHttpxClient(limits=limits))
            self._loop = loop
        return self._client

    async def complete(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Send one payload; return (status, lower-cased headers, body)."""
        import openai

        client = self._get_client()
        kwargs = {k: v for k, v in payload.items() if k in _SDK_FIELDS}
        extra = {k: v for k, v in payload.items() if k not in _SDK_FIELDS}
        try:
            raw = await client.chat.completions.with_raw_response.create(
                **kwargs, extra_body=extra or None)
        except openai.APIStatusError as exc:
            response = exc.response
            return response.status_code, _lower(response.headers), response.content
        except openai.APITimeoutError as exc:
            raise Timeout("no response in time (sdk)") from exc
        except openai.APIConnectionError as exc:
            raise ConnectionDropped(f"connection failed (sdk): {redact(str(exc))}") from exc
        except openai.OpenAIError as exc:
            raise BackendError(f"sdk error: {redact(str(exc))}") from exc
        return raw.status_code, _lower(raw.headers), raw.content

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except RuntimeError:
                pass  # created on an event loop that has since closed
            self._client = None


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}
