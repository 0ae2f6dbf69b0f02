"""What backend configs share: the strict pydantic base, the backend settings base and API keys.

A module of its own below both :mod:`llm_aug.llm.config` (which gathers the backend
configs into one union) and the backend modules (each declares its own config), so
neither imports the other's module for these.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from llm_aug.llm.types import Backend

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


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys (a typo in a config file is an error)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class BackendSettings(StrictModel):
    """Base of each backend's config: a ``kind`` literal (the union's tag) and :meth:`build`.

    A backend module declares its subclass next to the backend class; adding a backend
    is that module plus one member in :data:`llm_aug.llm.config.BackendConfig`.
    """

    model: str

    def build(self) -> "Backend":
        """The backend these settings describe (heavy engines are imported here, not before)."""
        raise NotImplementedError(f"{type(self).__name__} does not build a backend")
