"""Configuration of LLM backends and the runner (pydantic, unknown keys rejected).

API keys are never read from config files' plain values into logs: they are
``SecretStr`` (dumped as ``**********``) and by default come from the environment
(``api_key_env``, then ``LLM_AUG_API_KEY``, then ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator, model_validator

from llm_aug.core.errors import UserError
from llm_aug.llm.privacy import check_url_form

API_KEY_ENV = ("LLM_AUG_API_KEY", "OPENAI_API_KEY")
StructuredMode = Literal["response_format", "structured_outputs", "guided_json", "none"]
# "http" (default) and its alias "aiohttp": llm_aug.llm.transports.AiohttpTransport;
# "sdk": the openai package.
ClientKind = Literal["http", "aiohttp", "sdk"]


def api_key_from_env(names: tuple[str, ...] = API_KEY_ENV) -> SecretStr | None:
    """The first non-empty of the given environment variables, as a secret."""
    for name in names:
        if os.environ.get(name):
            return SecretStr(os.environ[name])
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelPrice(_Strict):
    """USD per million tokens."""

    input_per_1m: float = Field(0.0, ge=0)
    output_per_1m: float = Field(0.0, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the given token counts."""
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class RunnerConfig(_Strict):
    """Cross-cutting settings of :class:`llm_aug.llm.runner.Runner`."""

    concurrency: int = Field(8, ge=1, description="backend calls in flight at once")
    rpm: float | None = Field(None, gt=0, description="requests per minute limit")
    tpm: float | None = Field(None, gt=0, description="tokens per minute limit (estimated)")
    max_retries: int = Field(5, ge=0, description="retries after the first attempt")
    timeout_s: float | None = Field(120.0, gt=0, description="per backend call")
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    max_retry_after_s: float = Field(300.0, ge=0, description="cap on a server's Retry-After")
    cache_path: Path | None = None
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="by model id")
    quiet: bool = False
    retry_failed: bool = Field(True, description="on resume, request failed rows again")


class _BackendBase(_Strict):
    model: str


class OpenAIBackendConfig(_BackendBase):
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

    @property
    def base_urls(self) -> list[str]:
        """The endpoint URLs (one or more)."""
        return self.base_url

    @model_validator(mode="after")
    def _key_from_env(self) -> "OpenAIBackendConfig":
        if self.api_key is None:
            names = ((self.api_key_env,) if self.api_key_env else ()) + API_KEY_ENV
            self.api_key = api_key_from_env(names)
        return self


class VLLMBackendConfig(_BackendBase):
    """In-process vLLM engine (extra ``vllm``, GPU hosts)."""

    kind: Literal["vllm"] = "vllm"
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(256, ge=1)


class LlamaCppBackendConfig(_BackendBase):
    """In-process llama.cpp (extra ``local``); ``model="test"`` uses the offline test model."""

    kind: Literal["llamacpp"] = "llamacpp"
    model: str = "auto"
    model_path: Path | None = None
    n_ctx: int = Field(2048, ge=128)
    n_threads: int | None = None
    chat_format: str | None = None


class LangChainBackendConfig(_BackendBase):
    """Any langchain-core chat model, by import path ``module:Class`` and its kwargs."""

    kind: Literal["langchain"] = "langchain"
    chat_model: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class FakeBackendConfig(_BackendBase):
    """Scripted replies for tests and demos."""

    kind: Literal["fake"] = "fake"
    model: str = "fake"
    replies: list[str] | dict[str, str] | None = None


BackendConfig = Annotated[
    Union[OpenAIBackendConfig, VLLMBackendConfig, LlamaCppBackendConfig,
          LangChainBackendConfig, FakeBackendConfig],
    Field(discriminator="kind"),
]


class LLMConfig(_Strict):
    """A backend plus runner settings, e.g. the ``llm:`` section of an experiment file."""

    backend: BackendConfig
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
