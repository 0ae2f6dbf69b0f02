"""The ``batch status`` and ``batch collect`` jobs over a batch run directory.

A run directory is made by a job given ``batch=BatchMode(...)`` (the CLI's ``--batch
export|submit``). :func:`batch_status` polls its submitted batches; :func:`batch_collect`
imports the answers of finished batches (or of local ``vllm run-batch`` output files) into
the request cache, then continues the recorded job (:class:`~llm_aug.llm.batch.JobCall`)
through this API: it finds the answers there and goes on exactly as after a live run (its
next round, if any, becomes the next batch cycle)::

    from llm_aug import jobs
    from llm_aug.llm.batch import BatchMode
    jobs.classify("fine", "val.tsv", "runs/zs/p.jsonl", llm=cfg, batch=BatchMode("export", "runs/zs/b"))
    # ... run the request files with vllm run-batch ...
    done = jobs.batch_collect("runs/zs/b", results=["results.jsonl"])
    done.job_result  # the ClassifyResult, as a live run returns it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from llm_aug.core.errors import UserError
from llm_aug.llm.batch import BatchDeferred, BatchManifest, BatchMode, JobCall
from llm_aug.llm.batch.collect import CollectResult, collect_cycle, poll_status


def batch_status(run_dir: str | Path, *, allow_remote: bool = False) -> list[dict[str, Any]]:
    """One row per request file of the run: its batch, status and request counts (polled now)."""
    return poll_status(run_dir, allow_remote=allow_remote)


@dataclass
class BatchCollectResult:
    """What a collect did, and what the continued job returned (or where it stopped again).

    ``job_result`` is the continued job's own result (a ``ClassifyResult``, the compare
    report, an ``AugmentResult``); ``deferred`` is set instead when its next cycle was
    written. Neither is set while batches are still running, or after ``continue_job=False``.
    """

    collected: CollectResult
    job: JobCall | None = None
    job_result: Any = None
    deferred: BatchDeferred | None = None

    @property
    def manifest(self) -> BatchManifest:
        """The run's ``batch.json`` as the collect left it."""
        return self.collected.manifest


def _classify(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> Any:
    from llm_aug.jobs.classify import classify
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return classify(**kwargs, config=config, batch=batch, **extra)


def _compare(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> Any:
    from llm_aug.jobs.compare_prompts import compare_prompts
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return compare_prompts(**kwargs, config=config, batch=batch, **extra)


def _augment(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> Any:
    from llm_aug.jobs.augment import run_augment
    from llm_aug.jobs.augment_types import AugmentConfig

    return run_augment(AugmentConfig.model_validate(kwargs["cfg"]), batch=batch, **extra)


#: The jobs a batch run can continue, by the name they record.
CONTINUABLE: dict[str, Callable[[dict[str, Any], BatchMode | None, Mapping[str, Any]], Any]] = {
    "classify": _classify, "compare_prompts": _compare, "run_augment": _augment}


def resume_recorded_job(manifest: BatchManifest, run_dir: Path, *, live: bool = False,
                 job_kwargs: Mapping[str, Any] | None = None) -> tuple[Any, BatchDeferred | None]:
    """Call the recorded job again under the run's batch mode (no batch mode with ``live``).

    Returns (its result, None), or (None, the deferral) when it wrote its next cycle.
    ``job_kwargs``: arguments that are not recorded (callbacks such as ``on_plan``).
    """
    call = manifest.job
    if call is None or call.job not in CONTINUABLE:
        hint = f"; finish with: llm-aug {' '.join(manifest.command)}" if manifest.command else ""
        raise UserError(f"{run_dir}/batch.json records no job this version can continue{hint}")
    mode = None if live else BatchMode(manifest.mode, run_dir, list(manifest.command),
                                       max_requests=manifest.max_requests)
    try:
        return CONTINUABLE[call.job](dict(call.kwargs), mode, job_kwargs or {}), None
    except BatchDeferred as deferred:
        return None, deferred


def batch_collect(run_dir: str | Path, *, results: Sequence[str | Path] = (), allow_remote: bool = False,
                  live: bool = False, continue_job: bool = True,
                  job_kwargs: Mapping[str, Any] | None = None) -> BatchCollectResult:
    """Import the open cycle's answers into the request cache, then continue the recorded job.

    ``results``: local output files (``vllm run-batch -o``) for an exported cycle; without
    them the finished batches are downloaded from the server. A second collect (no open
    cycle, or results files an earlier cycle imported) is a no-op. ``live``: an exported
    cycle without results is closed unanswered, and the continued job sends what is still
    unanswered live. The job continues only once every batch of the cycle is collected.
    """
    run_dir = Path(run_dir)
    collected = collect_cycle(run_dir, results=results, allow_remote=allow_remote, live=live)
    out = BatchCollectResult(collected, job=collected.manifest.job)
    if collected.nothing_to_do or collected.stale or not collected.closed or not continue_job:
        return out
    out.job_result, out.deferred = resume_recorded_job(collected.manifest, run_dir, live=live,
                                                       job_kwargs=job_kwargs)
    return out
