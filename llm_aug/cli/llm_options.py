"""Options shared by every command that calls an LLM, and how they become configs."""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional, TypeVar

import typer

from llm_aug.cli.batch_mode import make_mode, run_deferrable
from llm_aug.core.errors import UserError, did_you_mean
from llm_aug.core.progress import is_quiet

if TYPE_CHECKING:  # the LLM runtime loads when a command runs, not for --help
    from llm_aug.llm import LLMConfig
    from llm_aug.llm.batch import BatchMode

BACKEND = typer.Option("llamacpp", "--backend", "-b", help="openai (any OpenAI-compatible server), vllm, llamacpp (embedded), fake.")
BASE_URL = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (default http://127.0.0.1:8000/v1); repeat it for replicas of one model (least-loaded routing, failover).")
MODEL = typer.Option(None, "--model", help="Model id (server), GGUF path or 'test' (llamacpp), HF id (vllm).")
CONCURRENCY = typer.Option(8, "--concurrency", "-c", help="Requests in flight at once.")
ALLOW_REMOTE = typer.Option(False, "--allow-remote", help="Allow a non-local base URL (posts leave this machine).")
LLM_CONFIG = typer.Option(None, "--llm-config", help="YAML/JSON file with backend and runner settings (overrides the flags).")
CACHE = typer.Option(None, "--cache", help="SQLite request cache (default: beside the output).")
FAKE_REPLIES = typer.Option(None, "--fake-replies", help="JSON list/dict of scripted replies for --backend fake.")
BATCH = typer.Option(None, "--batch", help="Batch inference: export (write the requests as OpenAI Batch API files, e.g. for vllm run-batch) or submit (also upload them as batches), then stop; finish with `llm-aug batch collect`.")
BATCH_DIR = typer.Option(None, "--batch-dir", help="Batch run directory (default: OUTPUT.batch/ beside an output file, OUT/batch/ in an output directory).")
BATCH_MAX_REQUESTS = typer.Option(50_000, "--batch-max-requests", help="Requests per batch file (the API's limit is 50,000; files are also kept under 200 MB).")
DRY_RUN = typer.Option(False, "--dry-run", help="Print a JSON estimate and stop: posts, requests to send (after cache and resume), prompt tokens, max completion tokens, max cost (null without prices in --llm-config); nothing is called or written.")


def llm_config(backend: str, base_url: list[str] | None, model: Optional[str], concurrency: int,
               allow_remote: bool, config_file: Optional[Path], cache: Path,
               fake_replies: Optional[Path] = None, quiet: bool = False) -> LLMConfig:
    """Build an ``LLMConfig`` from CLI flags, or from ``config_file`` when given."""
    from llm_aug.llm import load_llm_config

    if config_file is not None:
        import yaml

        try:
            raw = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{config_file}: cannot read LLM config ({exc})") from None
        raw.setdefault("runner", {}).setdefault("cache_path", str(cache))
    else:
        raw = {"backend": _backend_dict(backend, base_url, model, allow_remote, fake_replies),
               "runner": {"concurrency": concurrency, "cache_path": str(cache), "quiet": quiet}}
    return load_llm_config(raw)


def _backend_dict(backend: str, base_url: list[str] | None, model: Optional[str],
                  allow_remote: bool, fake_replies: Optional[Path]) -> dict[str, Any]:
    urls = list(base_url or [])  # --base-url is repeatable: always a list
    if backend == "openai":
        if not model:
            raise UserError("--backend openai needs --model (the server's model id)")
        out: dict[str, Any] = {"kind": "openai", "model": model, "allow_remote": allow_remote}
        if urls:
            out["base_url"] = urls
        return out
    if urls:
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
    hint = did_you_mean(backend, ("openai", "vllm", "llamacpp", "fake"))
    raise UserError(f"unknown backend {backend!r}{hint}; use openai, vllm, llamacpp or fake")



@dataclass
class LLMOptions:
    """The LLM flags every LLM command takes, as one value (see :func:`with_llm_options`)."""

    backend: str = "llamacpp"
    base_url: Optional[List[str]] = None
    model: Optional[str] = None
    concurrency: int = 8
    allow_remote: bool = False
    llm_config_file: Optional[Path] = None
    cache: Optional[Path] = None
    fake_replies: Optional[Path] = None
    batch: Optional[str] = None
    batch_dir: Optional[Path] = None
    batch_max_requests: int = 50_000
    batch_mode: Optional[BatchMode] = None  # set by with_llm_options, not a flag: the command's job takes it
    models: Optional[List[str]] = None  # every --model given, under with_llm_options(repeat_model=True)

    def config(self, default_cache: Path) -> LLMConfig:
        """The validated ``LLMConfig``; the request cache defaults to ``default_cache``."""
        return llm_config(self.backend, self.base_url, self.model, self.concurrency, self.allow_remote,
                          self.llm_config_file, self.cache or default_cache, self.fake_replies, is_quiet())


_FLAGS: tuple[tuple[str, Any, Any], ...] = (
    ("backend", str, BACKEND), ("base_url", Optional[List[str]], BASE_URL), ("model", Optional[str], MODEL),
    ("concurrency", int, CONCURRENCY), ("allow_remote", bool, ALLOW_REMOTE),
    ("llm_config_file", Optional[Path], LLM_CONFIG), ("cache", Optional[Path], CACHE),
    ("fake_replies", Optional[Path], FAKE_REPLIES), ("batch", Optional[str], BATCH),
    ("batch_dir", Optional[Path], BATCH_DIR), ("batch_max_requests", int, BATCH_MAX_REQUESTS),
)
F = TypeVar("F", bound=Callable[..., Any])
_CTX = "llm_options_ctx"


MODELS = typer.Option(None, "--model", help="Model id (server), GGUF path or 'test' (llamacpp), HF id (vllm); repeat it to compare models (one runner each).")


def with_llm_options(command: F | None = None, *, repeat_model: bool = False) -> Any:
    """Give a typer command the shared LLM flags; it receives them as its ``llm`` argument.

    One definition of the flags instead of the same eight parameters in every command.
    ``repeat_model``: ``--model`` may be given several times (``llm.models``; ``llm.model``
    is the first).
    """
    if command is None:
        return functools.partial(with_llm_options, repeat_model=repeat_model)
    sig = inspect.signature(command)
    kept = [p for p in sig.parameters.values() if p.name != "llm"]
    specs = [("model", Optional[List[str]], MODELS) if repeat_model and name == "model" else (name, kind, option)
             for name, kind, option in _FLAGS]
    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
             for name, kind, option in specs]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        models = list(kwargs.pop("model") or []) if repeat_model else None
        if repeat_model:
            kwargs["model"] = models[0] if models else None
        llm = LLMOptions(**{name: kwargs.pop(name) for name, _, _ in _FLAGS}, models=models)
        ctx = kwargs.pop(_CTX)
        llm.batch_mode = make_mode(llm.batch, llm.batch_dir, llm.batch_max_requests, kwargs, ctx)
        return run_deferrable(lambda: command(llm=llm, **kwargs))

    # typer fills a Context-typed parameter: the batch mode records the command from it.
    flags.append(inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    wrapper.__signature__ = sig.replace(parameters=kept + flags)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
