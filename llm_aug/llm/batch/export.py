"""Writing a run's pending requests as Batch API files: :class:`BatchDispatch`.

Each request becomes one JSON line (``custom_id`` = its cache key, ``body`` = exactly the
live call's payload) in ``requests-c<cycle>-<part>.jsonl`` files within the API's limits;
the same files feed OpenAI's Batch API, other hosted batch APIs and ``vllm run-batch``.
With ``submit`` they are also uploaded as batches (:mod:`llm_aug.llm.batch.client`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write
from llm_aug.llm.batch.manifest import (
    ENDPOINT,
    MANIFEST,
    BatchCycle,
    BatchFile,
    BatchManifest,
    load_manifest,
    save_manifest,
)
from llm_aug.llm.batch.mode import BatchDeferred, BatchMode
from llm_aug.llm.run_state import Pending
from llm_aug.llm.types import Backend, ChatRequest

logger = logging.getLogger(__name__)


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


class BatchDispatch:
    """The runner's dispatch in batch mode: pending requests become a batch cycle, then a stop.

    Handed to the :class:`~llm_aug.llm.runner.Runner` when it is built
    (:func:`~llm_aug.llm.build.build_runner` with ``batch=``).
    """

    def __init__(self, mode: BatchMode) -> None:
        self.mode = mode

    async def defer(self, pending: Sequence[Pending], backend: Backend, namespace: str,
                    cache_path: Path | None) -> BatchDeferred:
        """Write ``pending`` as a new cycle (or recognise the open one), submit if asked.

        Returns the :class:`BatchDeferred` for the runner to raise. An open cycle with other
        requests is an error: its answers must be collected first.
        """
        mode = self.mode
        lines, digest = self._lines(pending, backend)
        manifest = self._manifest(backend, namespace, cache_path)
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
            from llm_aug.llm.batch.client import submit_cycle  # aiohttp only when uploading

            await submit_cycle(manifest, cycle, mode)
        logger.info("batch cycle %d: %d request(s) in %d file(s)", cycle.index, cycle.n_requests,
                    len(cycle.files))
        return BatchDeferred(mode.run_dir, cycle.n_requests, [f.name for f in cycle.files],
                             submitted=mode.mode == "submit", cycle=cycle.index, model=manifest.model)

    def _payload(self, backend: Backend, request: ChatRequest) -> dict[str, Any]:
        """The live call's JSON body, so batch and live requests are identical."""
        from llm_aug.llm.backends.openai_compat import build_payload

        if self.mode.payload:
            return build_payload(backend.model, request, **self.mode.payload)
        try:  # a mode made in Python without attach(): the backend's own settings
            return build_payload(backend.model, request, backend.structured_output,  # type: ignore[attr-defined]
                                 backend.max_tokens_field, backend.extra_body)  # type: ignore[attr-defined]
        except AttributeError:
            raise UserError(f"--batch needs --backend openai, not {backend.name}") from None

    def _lines(self, pending: Sequence[Pending], backend: Backend) -> tuple[list[str], str]:
        """Deduplicated request lines (items with the same prompt share a key) and their ids' digest."""
        by_key: dict[str, str] = {}
        for p in pending:
            if p.request.params.top_logprobs is not None:
                raise UserError("--batch cannot carry token logprobs (--score-labels) through the "
                                "request cache; run that step live")
            if p.key not in by_key:
                by_key[p.key] = request_line(p.key, self._payload(backend, p.request))
        digest = hashlib.sha256("\n".join(sorted(by_key)).encode()).hexdigest()
        return list(by_key.values()), digest

    def _manifest(self, backend: Backend, namespace: str, cache_path: Path | None) -> BatchManifest:
        """The run directory's manifest, new or existing (which must be for the same backend)."""
        mode = self.mode
        if cache_path is None:
            raise UserError("--batch needs a request cache (the answers are imported into it)")
        if (mode.run_dir / MANIFEST).exists():
            manifest = load_manifest(mode.run_dir)
            if manifest.namespace != namespace:
                raise UserError(f"{mode.run_dir} holds batches for {manifest.namespace}, not "
                                f"{namespace}; give another --batch-dir")
            manifest.mode, manifest.command = mode.mode, mode.command or manifest.command
            manifest.job = mode.job or manifest.job
            manifest.max_requests = mode.max_requests
            return manifest
        return BatchManifest(
            command=mode.command, mode=mode.mode, backend=backend.name, model=backend.model,
            namespace=namespace, base_url=mode.base_url or getattr(backend, "base_url", None),
            api_key_env=mode.api_key_env, cache_path=str(Path(cache_path).resolve()),
            job=mode.job, max_requests=mode.max_requests)
