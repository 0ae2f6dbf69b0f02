"""Batch inference mode: requests written as OpenAI Batch API files instead of sent live.

While a :class:`BatchMode` is active (:func:`batch_mode`), a :class:`~llm_aug.llm.runner.Runner`
that has requests left after its cache and results file writes them, one JSON line each
(``custom_id`` = the request's cache key, ``body`` = exactly the live call's payload), into
request files in the run directory, optionally uploads them as batches
(:mod:`llm_aug.llm.batch_client`), and stops with :class:`BatchDeferred`. The same files
feed OpenAI's Batch API, other hosted batch APIs and ``vllm run-batch``.
:mod:`llm_aug.llm.batch_results` imports the answers into the request cache, so rerunning
the command finds them there and sends nothing.

The run directory holds ``batch.json`` (:class:`BatchManifest`: the command, backend, model,
cache, and per cycle its files, ids and states; never an API key) and the request files
``requests-c<cycle>-<part>.jsonl``. A cycle is one export; it is open until collected.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from llm_aug.llm.run_state import Pending
    from llm_aug.llm.runner import Runner

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # OpenAI Batch API: requests per input file
MAX_BYTES = 200 * 1024 * 1024  # OpenAI Batch API: bytes per input file
MANIFEST = "batch.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")
Mode = Literal["export", "submit"]


@dataclass
class BatchMode:
    """How a run defers its requests: ``export`` writes files, ``submit`` also uploads them.

    ``api_key``/``api_key_env``/``allow_remote`` come from the LLM config once it is built
    (:meth:`attach`); only the variable's name is ever written to the run directory.
    """

    mode: Mode
    run_dir: Path
    command: list[str] = field(default_factory=list)
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    api_key: SecretStr | None = field(default=None, repr=False)
    api_key_env: str | None = None
    allow_remote: bool = False
    base_url: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)  # build_payload's settings

    def attach(self, backend: Any) -> None:
        """Take URL, key and payload settings from an ``openai`` backend config; UserError for others."""
        if getattr(backend, "kind", None) != "openai":
            raise UserError(f"--batch needs --backend openai (the Batch API file format), "
                            f"not {getattr(backend, 'kind', backend)}")
        self.api_key, self.api_key_env = backend.api_key, backend.api_key_env
        self.allow_remote = bool(backend.allow_remote)
        self.base_url = backend.base_url[0]  # batches go to one server
        self.payload = {"structured": backend.structured_output,
                        "max_tokens_field": backend.max_tokens_field, "extra_body": backend.extra_body}


_MODE: contextvars.ContextVar[BatchMode | None] = contextvars.ContextVar("llm_aug_batch_mode",
                                                                        default=None)


@contextlib.contextmanager
def batch_mode(mode: BatchMode | None) -> Iterator[BatchMode | None]:
    """Make runners inside this block defer their requests to ``mode`` (None: run live)."""
    token = _MODE.set(mode)
    try:
        yield mode
    finally:
        _MODE.reset(token)


def current_batch_mode() -> BatchMode | None:
    """The active :class:`BatchMode`, if any."""
    return _MODE.get()


class BatchDeferred(Exception):
    """The run stopped after writing (and maybe submitting) its pending requests; not an error."""

    def __init__(self, run_dir: Path, n_requests: int, files: list[str], submitted: bool,
                 cycle: int, model: str = "") -> None:
        self.run_dir, self.n_requests, self.files = run_dir, n_requests, files
        self.submitted, self.cycle, self.model = submitted, cycle, model
        how = "submitted" if submitted else "wrote"
        super().__init__(f"{how} {n_requests} request(s) in {len(files)} file(s) to {run_dir}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class BatchFile(_Strict):
    """One request file and what became of it."""

    name: str
    n_requests: int
    bytes: int
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    request_counts: dict[str, int] = Field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: bool = False


class BatchCycle(_Strict):
    """One export: its files, and a digest of its custom ids (to recognise a repeat)."""

    index: int
    created: str
    ids_sha256: str
    n_requests: int
    files: list[BatchFile]
    imported: dict[str, int] = Field(default_factory=dict, description="ok/failed/missing counts")
    results_sha256: list[str] = Field(default_factory=list, description="local results files imported")

    @property
    def open(self) -> bool:
        """True until every file is collected."""
        return not all(f.collected for f in self.files)


class BatchManifest(_Strict):
    """``batch.json``: what ran, where answers go, and every cycle; never an API key."""

    version: int = 1
    command: list[str]
    mode: Mode
    backend: str
    model: str
    namespace: str
    base_url: str | None = None
    api_key_env: str | None = None
    cache_path: str
    cycles: list[BatchCycle] = Field(default_factory=list)

    @property
    def open_cycle(self) -> BatchCycle | None:
        """The last cycle if it is not collected yet."""
        return self.cycles[-1] if self.cycles and self.cycles[-1].open else None


def load_manifest(run_dir: Path) -> BatchManifest:
    """Read ``run_dir/batch.json``; one-line UserError if it is missing or not one."""
    path = Path(run_dir) / MANIFEST
    try:
        return BatchManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a batch run directory (no {MANIFEST})") from None
    except ValueError as exc:
        raise UserError(f"{path}: not a batch manifest ({str(exc).splitlines()[0]})") from None


def save_manifest(run_dir: Path, manifest: BatchManifest) -> None:
    """Write ``batch.json`` atomically."""
    atomic_write_text(Path(run_dir) / MANIFEST, manifest.model_dump_json(indent=2) + "\n")


def request_line(custom_id: str, body: dict[str, Any]) -> str:
    """One Batch API input line."""
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body},
                      ensure_ascii=False, separators=(",", ":"))


def split_lines(lines: Sequence[str], max_requests: int, max_bytes: int) -> list[list[str]]:
    """Consecutive groups of lines within both limits (a single oversized line is an error)."""
    groups: list[list[str]] = [[]]
    size = 0
    for line in lines:
        n = len(line.encode()) + 1
        if n > max_bytes:
            raise UserError(f"one batch request is {n} bytes, above the {max_bytes}-byte file limit")
        if groups[-1] and (len(groups[-1]) >= max_requests or size + n > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(line)
        size += n
    return [g for g in groups if g]


def write_request_files(run_dir: Path, cycle: int, lines: Sequence[str], max_requests: int,
                        max_bytes: int) -> list[BatchFile]:
    """Write ``requests-c<cycle>-<part>.jsonl`` files (atomically) within the limits."""
    files = []
    for part, group in enumerate(split_lines(lines, max_requests, max_bytes), start=1):
        name = f"requests-c{cycle}-{part:03d}.jsonl"
        text = "".join(line + "\n" for line in group)
        atomic_write(Path(run_dir) / name, lambda fh, t=text: fh.write(t))
        files.append(BatchFile(name=name, n_requests=len(group), bytes=len(text.encode())))
    return files


def _payload(mode: BatchMode, backend: Any, request: Any) -> dict[str, Any]:
    """The live call's JSON body, so batch and live requests are identical."""
    from llm_aug.llm.backends.openai_compat import build_payload

    if mode.payload:
        return build_payload(backend.model, request, **mode.payload)
    try:  # a mode made in Python without attach(): the backend's own settings
        return build_payload(backend.model, request, backend.structured_output,
                             backend.max_tokens_field, backend.extra_body)
    except AttributeError:
        raise UserError(f"--batch needs --backend openai, not {backend.name}") from None


def _lines(runner: "Runner", pending: Sequence["Pending"], mode: BatchMode) -> tuple[list[str], str]:
    """Deduplicated request lines (items with the same prompt share a key) and their ids' digest."""
    by_key: dict[str, str] = {}
    for p in pending:
        if p.request.params.top_logprobs is not None:
            raise UserError("--batch cannot carry token logprobs (--score-labels) through the "
                            "request cache; run that step live")
        if p.key not in by_key:
            by_key[p.key] = request_line(p.key, _payload(mode, runner.backend, p.request))
    digest = hashlib.sha256("\n".join(sorted(by_key)).encode()).hexdigest()
    return list(by_key.values()), digest


def _manifest(runner: "Runner", mode: BatchMode) -> BatchManifest:
    """The run directory's manifest, new or existing (which must be for the same backend)."""
    if runner.config.cache_path is None:
        raise UserError("--batch needs a request cache (the answers are imported into it)")
    if (mode.run_dir / MANIFEST).exists():
        manifest = load_manifest(mode.run_dir)
        if manifest.namespace != runner.namespace:
            raise UserError(f"{mode.run_dir} holds batches for {manifest.namespace}, not "
                            f"{runner.namespace}; give another --batch-dir")
        manifest.mode, manifest.command = mode.mode, mode.command or manifest.command
        return manifest
    backend = runner.backend
    return BatchManifest(
        command=mode.command, mode=mode.mode, backend=backend.name, model=backend.model,
        namespace=runner.namespace, base_url=mode.base_url or getattr(backend, "base_url", None),
        api_key_env=mode.api_key_env, cache_path=str(Path(runner.config.cache_path).resolve()))


async def defer(runner: "Runner", pending: Sequence["Pending"], mode: BatchMode) -> BatchDeferred:
    """Write ``pending`` as a new cycle (or recognise the open one), submit if asked.

    Returns the :class:`BatchDeferred` for the runner to raise. An open cycle with other
    requests is an error: its answers must be collected first.
    """
    lines, digest = _lines(runner, pending, mode)
    manifest = _manifest(runner, mode)
    cycle = manifest.open_cycle
    if cycle is not None and cycle.ids_sha256 != digest:
        raise UserError(f"{mode.run_dir} has batch cycle {cycle.index} not collected yet; run "
                        f"`llm-aug batch collect {mode.run_dir}` first (or give another --batch-dir)")
    if cycle is None:
        index = len(manifest.cycles) + 1
        files = write_request_files(mode.run_dir, index, lines, mode.max_requests, mode.max_bytes)
        cycle = BatchCycle(index=index, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           ids_sha256=digest, n_requests=len(lines), files=files)
        manifest.cycles.append(cycle)
    save_manifest(mode.run_dir, manifest)
    if mode.mode == "submit":
        from llm_aug.llm.batch_client import submit_cycle

        await submit_cycle(manifest, cycle, mode)
    logger.info("batch cycle %d: %d request(s) in %d file(s)", cycle.index, cycle.n_requests,
                len(cycle.files))
    return BatchDeferred(mode.run_dir, cycle.n_requests, [f.name for f in cycle.files],
                         submitted=mode.mode == "submit", cycle=cycle.index, model=manifest.model)
