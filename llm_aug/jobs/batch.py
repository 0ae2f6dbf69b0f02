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

import importlib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pydantic import ConfigDict, Field, SerializeAsAny, field_serializer, model_validator

from llm_aug.core.errors import UserError
from llm_aug.jobs.results import JobResult, ResultPart
from llm_aug.llm.batch import BatchDeferred, BatchManifest, BatchMode, JobCall
from llm_aug.llm.batch.collect import CollectResult, collect_cycle, poll_status


class BatchFileStatus(ResultPart):
    """One request file of a batch run and its batch, as last polled."""

    cycle: int = Field(description="the cycle the file belongs to (1 for the first requests)")
    file: str = Field(description="the request file's name in the run directory")
    requests: int = Field(description="requests in the file")
    batch_id: str | None = Field(description="the server's batch id (None for an exported file)")
    status: str | None = Field(description="the batch's status ('exported' for a file not submitted)")
    request_counts: dict[str, int] = Field(description="the server's counts (total, completed, failed)")
    collected: bool = Field(description="its answers are imported into the request cache")


class BatchStatus(JobResult):
    """What :func:`batch_status` found: one row per request file, in cycle order."""

    files: list[BatchFileStatus]


def batch_status(run_dir: str | Path, *, allow_remote: bool = False) -> BatchStatus:
    """One row per request file of the run: its batch, status and request counts (polled now)."""
    return BatchStatus(files=poll_status(run_dir, allow_remote=allow_remote))


#: The result type of each continuable job, by the name it records (module, class).
RESULT_TYPES = {"classify": ("classify", "ClassifyResult"),
                "compare_prompts": ("compare_prompts", "CompareReport"),
                "compare_matrix": ("compare_matrix", "MatrixReport"),
                "optimize_prompt": ("optimize_prompt", "OptimizeResult"),
                "run_augment": ("augment_types", "AugmentResult")}


def _deferral(value: BatchDeferred) -> dict[str, Any]:
    return {"run_dir": str(value.run_dir), "n_requests": value.n_requests, "files": list(value.files),
            "submitted": value.submitted, "cycle": value.cycle, "model": value.model}


class BatchCollectResult(JobResult):
    """What a collect did, and what the continued job returned (or where it stopped again).

    ``job_result`` is the continued job's own result (a ``ClassifyResult``, a
    ``CompareReport``, an ``AugmentResult``); ``deferred`` is set instead when its next
    cycle was written. Neither is set while batches are still running, or after
    ``continue_job=False``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    collected: CollectResult = Field(description="what the collect imported, and whether the cycle closed")
    job: JobCall | None = Field(None, description="the job the run records (continued once a cycle closes)")
    job_result: SerializeAsAny[JobResult] | None = Field(None, description="the continued job's result")
    deferred: BatchDeferred | None = Field(None, description="where the continued job stopped again: "
                                           "its next cycle's request files")

    @property
    def manifest(self) -> BatchManifest:
        """The run's ``batch.json`` as the collect left it."""
        return self.collected.manifest

    @field_serializer("deferred")
    def _deferred_json(self, value: BatchDeferred | None) -> dict[str, Any] | None:
        return None if value is None else _deferral(value)

    @model_validator(mode="before")
    @classmethod
    def _typed_parts(cls, data: Any) -> Any:
        """From JSON: the job's result as its own type, the deferral as a BatchDeferred."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("deferred"), dict):
            deferred = dict(data["deferred"])
            data["deferred"] = BatchDeferred(**{**deferred, "run_dir": Path(deferred["run_dir"])})
        job, result = data.get("job"), data.get("job_result")
        name = job.get("job") if isinstance(job, dict) else getattr(job, "job", None)
        if isinstance(result, dict) and name in RESULT_TYPES:
            module, type_name = RESULT_TYPES[name]
            result_type = getattr(importlib.import_module(f"llm_aug.jobs.{module}"), type_name)
            data["job_result"] = result_type.model_validate(result)
        return data


def _classify(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> JobResult:
    from llm_aug.jobs.classify import classify
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return classify(**kwargs, config=config, batch=batch, **extra)


def _compare(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> JobResult:
    from llm_aug.jobs.compare_prompts import compare_prompts
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return compare_prompts(**kwargs, config=config, batch=batch, **extra)


def _matrix(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> JobResult:
    from llm_aug.jobs.compare_matrix import compare_matrix
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return compare_matrix(**kwargs, config=config, batch=batch, **extra)


def _augment(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> JobResult:
    from llm_aug.jobs.augment import run_augment
    from llm_aug.jobs.augment_types import AugmentConfig

    return run_augment(AugmentConfig.model_validate(kwargs["cfg"]), batch=batch, **extra)


def _optimize(kwargs: dict[str, Any], batch: BatchMode | None, extra: Mapping[str, Any]) -> JobResult:
    from llm_aug.jobs.optimize_prompt import optimize_prompt
    from llm_aug.prompting.classify import ClassifyConfig

    config = ClassifyConfig.model_validate(kwargs.pop("config"))
    return optimize_prompt(**kwargs, config=config, batch=batch, **extra)


#: The jobs a batch run can continue, by the name they record.
CONTINUABLE: dict[str, Callable[[dict[str, Any], BatchMode | None, Mapping[str, Any]], JobResult]] = {
    "classify": _classify, "compare_prompts": _compare, "compare_matrix": _matrix, "run_augment": _augment,
    "optimize_prompt": _optimize}


def resume_recorded_job(manifest: BatchManifest, run_dir: Path, *, live: bool = False,
                        job_kwargs: Mapping[str, Any] | None = None) -> tuple[JobResult | None, BatchDeferred | None]:
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
    out = BatchCollectResult(collected=collected, job=collected.manifest.job)
    if collected.nothing_to_do or collected.stale or not collected.closed or not continue_job:
        return out
    out.job_result, out.deferred = resume_recorded_job(collected.manifest, run_dir, live=live,
                                                       job_kwargs=job_kwargs)
    return out
