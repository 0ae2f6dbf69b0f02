"""The config of the OpenAI-compatible backend (:mod:`llm_aug.llm.backends.openai_compat`).

It lives apart from the backend because that module imports the transports (aiohttp) at
its top: reading an ``llm:`` config, or ``llm-aug --help``, must not pay for them. The
backend is imported when a config is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_serializer, field_validator, model_validator

from llm_aug.core.errors import UserError
from llm_aug.llm.privacy import check_url_form
from llm_aug.llm.settings import API_KEY_ENV, BackendSettings, ClientKind, StructuredMode, api_key_from_env

if TYPE_CHECKING:
    from llm_aug.llm.backends.openai_compat import OpenAICompatBackend


class OpenAIBackendConfig(BackendSettings):
    """An OpenAI-compatible server (OpenAI, vLLM serve, llama.cpp server, ...)."""

    kind: Literal["openai"] = "openai"
    base_url: list[str] = Field(
        ["http://127.0.0.1:8000/v1"],
        description="one URL, or a list of replicas serving the same model (least-loaded routing)")
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    api_key: SecretStr | None = None
    client: ClientKind = "http"
    max_connections: int = Field(64, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    structured_output: StructuredMode = "response_format"
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    extra_body: dict[str, Any] = Field(default_factory=dict)
    allow_remote: bool = False

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_more_urls(cls, value: Any) -> Any:
        """A single URL becomes a one-element list; the only place URLs are checked for form
        and repeats, so a URL with a password is refused before any file names it."""
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list):
            return urls  # pydantic's own type error
        if not urls:
            raise ValueError("give at least one URL")
        seen: set[str] = set()
        for url in urls:
            if not isinstance(url, str):
                return urls
            try:
                check_url_form(url)
            except UserError as exc:
                raise ValueError(str(exc)) from None
            if url.rstrip("/") in seen:
                raise ValueError(f"{url} is listed twice")
            seen.add(url.rstrip("/"))
        return urls

    @field_serializer("base_url")
    def _dump_urls(self, urls: list[str]) -> str | list[str]:
        # Run configs have always written one URL as a string: they stay byte-identical.
        return urls[0] if len(urls) == 1 else urls

    @model_validator(mode="after")
    def _key_from_env(self) -> "OpenAIBackendConfig":
        if self.api_key is None:
            names = ((self.api_key_env,) if self.api_key_env else ()) + API_KEY_ENV
            self.api_key = api_key_from_env(names)
        return self

    def build(self) -> "OpenAICompatBackend":
        """An :class:`~llm_aug.llm.backends.openai_compat.OpenAICompatBackend`; the privacy
        check of every URL (remote needs ``allow_remote``) runs here."""
        from llm_aug.llm.backends.openai_compat import OpenAICompatBackend  # aiohttp: only when built

        return OpenAICompatBackend(
            self.model, self.base_url, api_key=self.api_key, client=self.client,
            max_connections=self.max_connections, timeout_s=self.timeout_s,
            structured_output=self.structured_output, max_tokens_field=self.max_tokens_field,
            extra_body=self.extra_body, allow_remote=self.allow_remote)
