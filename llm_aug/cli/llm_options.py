"""Options shared by every command that calls an LLM, and how they become configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from pydantic import TypeAdapter, ValidationError

from llm_aug.errors import UserError

BACKEND = typer.Option("llamacpp", "--backend", "-b", help="openai (any OpenAI-compatible server), vllm, llamacpp (embedded), fake.")
BASE_URL = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (default http://127.0.0.1:8000/v1).")
MODEL = typer.Option(None, "--model", help="Model id (server), GGUF path or 'test' (llamacpp), HF id (vllm).")
CONCURRENCY = typer.Option(8, "--concurrency", "-c", help="Requests in flight at once.")
ALLOW_REMOTE = typer.Option(False, "--allow-remote", help="Allow a non-local base URL (posts leave this machine).")
LLM_CONFIG = typer.Option(None, "--llm-config", help="YAML/JSON file with backend and runner settings (overrides the flags).")
CACHE = typer.Option(None, "--cache", help="SQLite request cache (default: beside the output).")
FAKE_REPLIES = typer.Option(None, "--fake-replies", help="JSON list/dict of scripted replies for --backend fake.")
DRY_RUN = typer.Option(False, "--dry-run", help="Print requests, token and cost estimate; call nothing.")


def llm_config(backend: str, base_url: Optional[str], model: Optional[str], concurrency: int,
               allow_remote: bool, config_file: Optional[Path], cache: Path,
               fake_replies: Optional[Path] = None, quiet: bool = False) -> Any:
    """Build an ``LLMConfig`` from CLI flags, or from ``config_file`` when given."""
    from llm_aug.llm_config import LLMConfig

    if config_file is not None:
        try:
            raw = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{config_file}: cannot read LLM config ({exc})") from None
        raw.setdefault("runner", {}).setdefault("cache_path", str(cache))
    else:
        raw = {"backend": _backend_dict(backend, base_url, model, allow_remote, fake_replies),
               "runner": {"concurrency": concurrency, "cache_path": str(cache), "quiet": quiet}}
    try:
        return TypeAdapter(LLMConfig).validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"invalid LLM settings at {where}: {first['msg']}") from None


def _backend_dict(backend: str, base_url: Optional[str], model: Optional[str], allow_remote: bool,
                  fake_replies: Optional[Path]) -> dict[str, Any]:
    if backend == "openai":
        if not model:
            raise UserError("--backend openai needs --model (the server's model id)")
        out: dict[str, Any] = {"kind": "openai", "model": model, "allow_remote": allow_remote}
        if base_url:
            out["base_url"] = base_url
        return out
    if base_url:
        raise UserError(f"--base-url is for --backend openai, not {backend}")
    if backend == "vllm":
        if not model:
            raise UserError("--backend vllm needs --model (a Hugging Face id or local path)")
        return {"kind": "vllm", "model": model}
    if backend == "llamacpp":
        return {"kind": "llamacpp", "model": model or "auto"}
    if backend == "fake":
        replies = json.loads(fake_replies.read_text(encoding="utf-8")) if fake_replies else None
        return {"kind": "fake", "model": model or "fake", "replies": replies}
    raise UserError(f"unknown backend {backend!r}; use openai, vllm, llamacpp or fake")


def make_runner(config: Any) -> Any:
    """A Runner over the configured backend (privacy checks happen when it is built)."""
    from llm_aug.backends import make_backend
    from llm_aug.runner import Runner

    try:
        backend = make_backend(config.backend)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return Runner(backend, config.runner)
