"""``batch.json``: the record of a batch run directory (no API key is ever written to it).

:class:`BatchManifest` holds what ran (the job and its settings, :class:`JobCall`; the
command line too, when the CLI started it), the backend, model and request cache, and
per cycle its request files, batch ids and states. A cycle is one export; it is open
until collected.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_text

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # OpenAI Batch API: requests per input file
MAX_BYTES = 200 * 1024 * 1024  # OpenAI Batch API: bytes per input file
MANIFEST = "batch.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")
Mode = Literal["export", "submit"]
_SECRET_KEYS = frozenset({"api_key"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class JobCall(_Strict):
    """A job of :mod:`llm_aug.jobs` and its JSON-ready keyword arguments (``batch`` aside).

    ``batch collect`` continues the run by calling the job again with these, under the
    same batch run directory; API keys are left out (they come from the environment).
    """

    job: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, job: str, **kwargs: Any) -> "JobCall":
        """Record ``job(**kwargs)``: paths made absolute, pydantic models dumped, keys dropped."""
        return cls(job=job, kwargs={k: _plain(v) for k, v in kwargs.items()})


def _plain(value: Any) -> Any:
    """``value`` as JSON data: paths absolute (a collect may run elsewhere), secrets dropped."""
    if isinstance(value, BaseModel):
        value = value.model_dump()  # python mode: paths stay paths, keys stay SecretStr
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()
                if k not in _SECRET_KEYS and not isinstance(v, SecretStr)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    json.dumps(value)  # anything else must already be JSON (a TypeError names it otherwise)
    return value


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
    job: JobCall | None = Field(None, description="the job to continue once a cycle is collected")
    max_requests: int = Field(MAX_REQUESTS, ge=1, description="requests per file of later cycles")
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
