"""The one way to turn configuration into a working runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from pydantic import TypeAdapter, ValidationError

from llm_aug.core.errors import UserError
from llm_aug.llm.backends import make_backend
from llm_aug.llm.config import LLMConfig
from llm_aug.llm.runner import Runner

if TYPE_CHECKING:
    from llm_aug.llm.batch import BatchMode


def load_llm_config(raw: LLMConfig | Mapping[str, Any]) -> LLMConfig:
    """Validate an ``LLMConfig`` from a dict (e.g. YAML); one-line ``UserError`` when invalid."""
    if isinstance(raw, LLMConfig):
        return raw
    try:
        return TypeAdapter(LLMConfig).validate_python(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"invalid LLM settings at {where}: {message}") from None


def build_runner(config: LLMConfig | Mapping[str, Any] | None, *,
                 batch: BatchMode | None = None) -> Runner:
    """A :class:`Runner` over the configured backend; privacy checks run while it is built.

    Every caller (CLI, augment, experiment, notebooks) builds its runner here. With
    ``batch``, the runner's dispatch writes its requests as batch files instead of sending
    them (:mod:`llm_aug.llm.batch`); the backend must be ``openai`` (the file format).
    """
    if config is None:
        raise UserError("this job needs an LLM backend (--backend ... or an llm: section)")
    config = load_llm_config(config)
    dispatch = None
    if batch is not None:
        from llm_aug.llm.batch.export import BatchDispatch  # only batch runs need it

        batch.attach(config.backend)  # refuses a backend other than openai, before anything runs
        dispatch = BatchDispatch(batch)
    try:
        backend = make_backend(config.backend)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return Runner(backend, config.runner, dispatch=dispatch)
