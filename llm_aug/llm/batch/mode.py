"""How a run defers its requests to batch files (:class:`BatchMode`), and the stop that follows.

A :class:`BatchMode` is handed to :func:`~llm_aug.llm.build.build_runner` (``batch=``) by
the job that builds the runner; nothing ambient carries it. The runner then writes the
requests left after its cache and results file as batch files instead of sending them
(:mod:`llm_aug.llm.batch.export`) and stops with :class:`BatchDeferred`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from llm_aug.core.errors import UserError
from llm_aug.llm.batch.manifest import MAX_BYTES, MAX_REQUESTS, JobCall, Mode


@dataclass
class BatchMode:
    """How a run defers its requests: ``export`` writes files, ``submit`` also uploads them.

    ``api_key``/``api_key_env``/``allow_remote`` come from the LLM config once it is built
    (:meth:`attach`); only the variable's name is ever written to the run directory.
    ``command`` is the CLI command line (for messages); ``job`` the job to continue, set by
    the job itself.
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
    job: JobCall | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("export", "submit"):
            raise UserError(f"batch mode is export or submit, not {self.mode!r}")
        if self.max_requests < 1:
            raise UserError("--batch-max-requests must be at least 1")
        self.run_dir = Path(os.path.abspath(self.run_dir))  # a collect may run elsewhere

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


class BatchDeferred(Exception):
    """The run stopped after writing (and maybe submitting) its pending requests; not an error."""

    def __init__(self, run_dir: Path, n_requests: int, files: list[str], submitted: bool,
                 cycle: int, model: str = "") -> None:
        self.run_dir, self.n_requests, self.files = run_dir, n_requests, files
        self.submitted, self.cycle, self.model = submitted, cycle, model
        how = "submitted" if submitted else "wrote"
        super().__init__(f"{how} {n_requests} request(s) in {len(files)} file(s) to {run_dir}")
