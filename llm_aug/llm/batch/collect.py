"""Polling a batch run directory's batches and importing their answers into the request cache.

:func:`poll_status` refreshes the submitted batches of the open cycle; :func:`collect_cycle`
imports the answers of finished batches (or of local ``vllm run-batch`` output files). The
job continued afterwards (``llm_aug.jobs.batch_collect``) then finds them in the cache and
sends nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write, file_sha256
from llm_aug.llm.batch.client import BatchClient, client_for, refresh_cycle
from llm_aug.llm.batch.manifest import TERMINAL, BatchCycle, BatchManifest, load_manifest, save_manifest
from llm_aug.llm.batch.results import (
    ImportCounts,
    cycle_requests,
    import_lines,
    read_answers,
    store_answers,
)
from llm_aug.llm.cache import RequestCache
from llm_aug.llm.config import API_KEY_ENV, api_key_from_env
from llm_aug.llm.types import Generation


def _client(manifest: BatchManifest, allow_remote: bool) -> BatchClient:
    names = ((manifest.api_key_env,) if manifest.api_key_env else ()) + API_KEY_ENV
    return client_for(manifest, api_key=api_key_from_env(names), allow_remote=allow_remote)


def _rows(manifest: BatchManifest) -> list[dict[str, Any]]:
    return [{"cycle": c.index, "file": f.name, "requests": f.n_requests, "batch_id": f.batch_id,
             "status": f.status or ("exported" if f.batch_id is None else None),
             "request_counts": f.request_counts, "collected": f.collected}
            for c in manifest.cycles for f in c.files]


def poll_status(run_dir: str | Path, *, allow_remote: bool = False) -> list[dict[str, Any]]:
    """One row per request file of the run: its batch, status and request counts (polled now)."""
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    cycle = manifest.open_cycle
    if cycle is not None and any(f.batch_id for f in cycle.files):
        async def poll() -> None:
            async with _client(manifest, allow_remote) as client:
                await refresh_cycle(client, cycle)
        asyncio.run(poll())
        save_manifest(run_dir, manifest)
    return _rows(manifest)


@dataclass
class CollectResult:
    """What a collect did; ``closed`` when the cycle is now fully collected (time to continue)."""

    run_dir: Path
    manifest: BatchManifest
    cycle: int | None = None
    imported: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)  # batches not finished yet
    closed: bool = False
    stale: list[str] = field(default_factory=list)  # results files an earlier cycle imported

    @property
    def nothing_to_do(self) -> bool:
        """True when there was no open cycle: a repeated collect changes nothing."""
        return self.cycle is None


async def _collect_submitted(run_dir: Path, manifest: BatchManifest, cycle: BatchCycle,
                             cache: RequestCache, counts: ImportCounts, allow_remote: bool) -> None:
    """Download and import the output and error files of every finished batch of ``cycle``."""
    requests = cycle_requests(run_dir, cycle)
    async with _client(manifest, allow_remote) as client:
        await refresh_cycle(client, cycle)
        for entry in cycle.files:
            if entry.collected or entry.status not in TERMINAL:
                continue
            for kind, file_id in (("output", entry.output_file_id), ("errors", entry.error_file_id)):
                if file_id:
                    data = await client.content(file_id)
                    path = run_dir / f"{Path(entry.name).stem}.{kind}.jsonl"
                    atomic_write(path, lambda fh, d=data: fh.write(d.decode("utf-8")))
                    import_lines(data.decode("utf-8").splitlines(), requests, cache, counts,
                                 source=str(path))
            cache.commit()
            entry.collected = True
            save_manifest(run_dir, manifest)  # only after its answers are in the cache


def _merge(cycle: BatchCycle, counts: ImportCounts) -> None:
    """Add this collect's counts to the cycle's (a cycle may be collected in several goes)."""
    done = cycle.imported
    ok = done.get("ok", 0) + len(counts.ok)
    failed = done.get("failed", 0) + len(counts.failed_ids - counts.ok)
    cycle.imported = {"ok": ok, "failed": failed, "missing": cycle.n_requests - ok - failed,
                      "unknown_lines": done.get("unknown_lines", 0) + counts.unknown,
                      "repeated_lines": done.get("repeated_lines", 0) + counts.repeated,
                      "prompt_tokens": done.get("prompt_tokens", 0) + counts.prompt_tokens,
                      "completion_tokens": done.get("completion_tokens", 0) + counts.completion_tokens}


def _stale(manifest: BatchManifest, results: Sequence[str | Path], digests: list[str]) -> list[str]:
    """The results files an earlier cycle imported (all of them: a repeated collect, a no-op).

    Importing them again would close the open cycle with none of its answers; a mix of
    old and new files is a mistake, refused in one line.
    """
    seen = {d: c.index for c in manifest.cycles for d in c.results_sha256}
    old = [(str(p), seen[d]) for p, d in zip(results, digests) if d in seen]
    if old and len(old) < len(results):
        raise UserError(f"{old[0][0]} was already imported in cycle {old[0][1]}; give only the "
                        "results of the open cycle's request files")
    return [f"{path} (cycle {index})" for path, index in old]


def collect_cycle(run_dir: str | Path, *, results: Sequence[str | Path] = (),
                  allow_remote: bool = False, live: bool = False) -> CollectResult:
    """Import the open cycle's answers into the request cache; a no-op when none is open.

    ``results``: local output files (``vllm run-batch -o``) for an exported cycle; without
    them the finished batches are downloaded from the server. Results files an earlier
    cycle imported are not imported again (a no-op). ``live``: an exported cycle without
    results is closed unanswered, so the rerun sends its requests live.
    """
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    result = CollectResult(run_dir, manifest)
    cycle = manifest.open_cycle
    if cycle is None:
        return result
    exported = not all(f.batch_id for f in cycle.files)
    if not results and exported and not live:
        raise UserError(f"batch cycle {cycle.index} in {run_dir} was exported, not submitted: give "
                        "--results FILE (e.g. vllm run-batch output), rerun the command with --batch "
                        "submit, or add --live to send its requests live")
    missing = [str(p) for p in results if not Path(p).is_file()]
    if missing:
        raise UserError(f"results file not found: {missing[0]}")
    digests = [file_sha256(p) for p in results]
    result.stale = _stale(manifest, results, digests)
    if result.stale and not live:
        result.cycle = cycle.index
        return result
    fresh = [] if result.stale else list(results)  # with --live, stale files are skipped
    cycle.results_sha256 += [] if result.stale else digests
    counts = _import(run_dir, manifest, cycle, fresh, allow_remote, local=bool(results) or exported)
    _merge(cycle, counts)
    save_manifest(run_dir, manifest)
    result.cycle, result.imported, result.closed = cycle.index, dict(cycle.imported), not cycle.open
    result.waiting = [f"{f.batch_id} ({f.status})" for f in cycle.files if not f.collected]
    return result


def _import(run_dir: Path, manifest: BatchManifest, cycle: BatchCycle, results: Sequence[str | Path],
            allow_remote: bool, local: bool) -> ImportCounts:
    """Import local results files (then the cycle is closed), or download finished batches."""
    counts = ImportCounts()
    cache = RequestCache(manifest.cache_path)
    try:
        if local:
            requests = cycle_requests(run_dir, cycle)
            answers: dict[str, list[Generation]] = {}
            for path in results:  # every file read before any answer is stored
                with Path(path).open(encoding="utf-8") as fh:
                    answers.update(read_answers(fh, requests, counts, source=str(path)))
            store_answers(answers, cache)
            for entry in cycle.files:
                entry.collected = True
        else:
            asyncio.run(_collect_submitted(run_dir, manifest, cycle, cache, counts, allow_remote))
    finally:
        cache.close()
    return counts
