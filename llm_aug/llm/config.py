"""Configuration of LLM backends and the runner (pydantic, unknown keys rejected).

Each backend module declares its own config class (``FakeBackendConfig`` in
``backends/fake.py``, ...; the OpenAI-compatible one in ``backends/openai_config.py``,
which does not import aiohttp); this module gathers them into the tagged union
:data:`BackendConfig` and re-exports them.

API keys are never read from config files' plain values into logs: they are
``SecretStr`` (dumped as ``**********``) and by default come from the environment
(``api_key_env``, then ``LLM_AUG_API_KEY``, then ``OPENAI_API_KEY``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union, get_args

from pydantic import Field

from llm_aug.llm.backends.fake import FakeBackendConfig
from llm_aug.llm.backends.langchain import LangChainBackendConfig
from llm_aug.llm.backends.llamacpp import LlamaCppBackendConfig
from llm_aug.llm.backends.openai_config import OpenAIBackendConfig
from llm_aug.llm.backends.vllm import VLLMBackendConfig
from llm_aug.llm.settings import (
    API_KEY_ENV,
    BackendSettings,
    ClientKind,
    StrictModel,
    StructuredMode,
    api_key_from_env,
)

# Re-exported: tests, docs and user code import the backend configs and these names from here.
__all__ = [
    "API_KEY_ENV", "BackendConfig", "BackendSettings", "ClientKind", "FakeBackendConfig",
    "LLMConfig", "LangChainBackendConfig", "LlamaCppBackendConfig", "ModelPrice",
    "OpenAIBackendConfig", "RunnerConfig", "StructuredMode", "VLLMBackendConfig",
    "api_key_from_env", "backend_kinds",
]


class ModelPrice(StrictModel):
    """USD per million tokens."""

    input_per_1m: float = Field(0.0, ge=0)
    output_per_1m: float = Field(0.0, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the given token counts."""
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class RunnerConfig(StrictModel):
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


# Each member is declared in its backend's module; a new backend is one more member here.
BackendConfig = Annotated[
    Union[OpenAIBackendConfig, VLLMBackendConfig, LlamaCppBackendConfig,
          LangChainBackendConfig, FakeBackendConfig],
    Field(discriminator="kind"),
]


def backend_kinds() -> list[str]:
    """The ``kind`` of every member of :data:`BackendConfig`, sorted."""
    members = get_args(get_args(BackendConfig)[0])
    return sorted(member.model_fields["kind"].default for member in members)


class LLMConfig(StrictModel):
    """A backend plus runner settings, e.g. the ``llm:`` section of an experiment file."""

    backend: BackendConfig
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
