"""Batch inference: requests written as OpenAI Batch API files instead of sent live.

A job given ``batch=BatchMode(...)`` builds its runner with that mode
(:func:`~llm_aug.llm.build.build_runner`); the runner's dispatch then writes the requests
left after its cache and results file as request files in the run directory
(:mod:`.export`), optionally uploads them as batches (:mod:`.client`), and stops with
:class:`BatchDeferred`. :mod:`.collect` imports the answers into the request cache
(:mod:`.results` reads them), and ``llm_aug.jobs.batch_collect`` continues the recorded job
(:class:`JobCall` in ``batch.json``, :mod:`.manifest`), which finds them there and sends
nothing.

The run directory holds ``batch.json`` (the job, backend, model, cache and per cycle its
files, ids and states; never an API key) and the request files ``requests-c<cycle>-<part>.jsonl``.
"""

from __future__ import annotations

from llm_aug.llm.batch.manifest import (
    ENDPOINT,
    MANIFEST,
    MAX_BYTES,
    MAX_REQUESTS,
    TERMINAL,
    BatchCycle,
    BatchFile,
    BatchManifest,
    JobCall,
    Mode,
    load_manifest,
    save_manifest,
)
from llm_aug.llm.batch.mode import BatchDeferred, BatchMode

__all__ = [
    "ENDPOINT", "MANIFEST", "MAX_BYTES", "MAX_REQUESTS", "TERMINAL", "BatchCycle", "BatchDeferred",
    "BatchFile", "BatchManifest", "BatchMode", "JobCall", "Mode", "load_manifest", "save_manifest",
]
