"""The classify job: load posts, check the prompt, run the LLM, write predictions and a manifest.

Notebook use::

    from llm_aug.jobs import classify
    result = classify("fine", "val.tsv", "runs/zs/predictions.jsonl",
                      llm={"backend": {"kind": "llamacpp", "model": "test"}})
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import Field

from llm_aug.core.lock import locks_output
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import Dataset, load_dataset, read_objects
from llm_aug.data.parquet import output_format as check_output_format
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.jobs.results import JobResult
from llm_aug.llm import LLMConfig, Runner, build_runner, load_llm_config
from llm_aug.llm.batch import BatchMode, JobCall
from llm_aug.prompting.classify import (
    ClassifyConfig,
    build_requests,
    classify_counted,
    load_checked_prompt,
    raw_results_path,
)
from llm_aug.prompting.templates import Prompt


class ClassifyResult(JobResult):
    """What a classify run did: the runner's summary (or dry-run estimate) and where it wrote.

    The CLI prints ``summary`` (the JSON on stdout) and exits 4 when ``n_failed``.
    """

    output: Path = Field(description="the predictions JSONL (not written by a dry run)")
    summary: dict[str, Any] = Field(description="the runner's summary as the manifest's usage records it, "
                                    "or the dry run's estimate")
    dry_run: bool = Field(False, description="True when nothing was sent (summary is the estimate)")
    n_ok: int = Field(0, description="written predictions without an error")
    n_failed: int = Field(0, description="written predictions with an error (their error field says why)")


def prediction_counts(predictions: Path) -> tuple[int, int]:
    """(rows without an error, rows with one) in a predictions JSONL or Parquet file."""
    failed = [obj.get("error") is not None for _, obj in read_objects(predictions)]
    return len(failed) - sum(failed), sum(failed)


@dataclass
class _Inputs:
    scheme: LabelScheme
    data: Dataset
    train: Dataset | None
    prompt: Prompt


def _prepare(task: Task | str, input_file: Path, cfg: ClassifyConfig, train: Path | None) -> _Inputs:
    """Everything checked before a request is built; shared by dry and real runs."""
    scheme = scheme_for_task(task)
    prompt = load_checked_prompt(scheme, cfg, has_train=train is not None)
    data = load_dataset(input_file, scheme, require_labels=False)
    train_data = load_dataset(train, scheme) if train else None
    return _Inputs(scheme, data, train_data, prompt)


@locks_output("output", unless="dry_run")
def classify(task: Task | str, input_file: str | Path, output: str | Path, *,
             llm: LLMConfig | Mapping[str, Any], config: ClassifyConfig | None = None,
             train: str | Path | None = None, dry_run: bool = False,
             runner: Runner | None = None, batch: BatchMode | None = None,
             output_format: str | None = None) -> ClassifyResult:
    """Classify ``input_file`` into ``output`` (predictions JSONL, or Parquet when it ends
    ``.parquet``), or estimate the cost (``dry_run``). ``output_format`` must agree with that.

    ``batch``: write the requests as batch files instead of sending them, and stop with
    :class:`~llm_aug.llm.batch.BatchDeferred`; ``jobs.batch_collect`` finishes the run.
    """
    cfg = config or ClassifyConfig()
    input_file, output = Path(input_file), Path(output)
    train = Path(train) if train else None
    llm = load_llm_config(llm)
    check_outputs(output=output, inputs=(input_file, train), cache=llm.runner.cache_path)
    check_output_format(output, output_format)
    inputs = _prepare(task, input_file, cfg, train)
    if batch is not None:
        if runner is not None:
            raise ValueError("give batch= or runner=, not both (a runner has its dispatch already)")
        batch.job = JobCall.of("classify", task=inputs.scheme.task, input_file=input_file, output=output,
                               llm=llm, config=cfg, train=train)
    runner = runner or build_runner(llm, batch=batch)
    if dry_run:
        requests, _ = build_requests(inputs.data, inputs.scheme, inputs.prompt, cfg, inputs.train)
        estimate = runner.dry_run(requests, raw_results_path(output))
        return ClassifyResult(output=output, summary=estimate.model_dump(mode="json"), dry_run=True)
    summary, n_ok, n_failed = classify_counted(inputs.data, inputs.scheme, runner, cfg, output,
                                               train=inputs.train, prompt=inputs.prompt)
    prompt = inputs.prompt
    write_manifest(output.parent, "classify", data_files=[input_file] + ([train] if train else []),
                   seed=cfg.seed, name=f"{output.stem}.manifest.json",
                   config={"task": inputs.scheme.task, "classify": cfg.model_dump(),
                           "llm": llm.model_dump(mode="json")},
                   extra={"prompt": {"name": prompt.name, "version": prompt.version, "sha256": prompt.sha256},
                          "usage": summary.to_manifest()})
    return ClassifyResult(output=output, summary=summary.to_manifest(), n_ok=n_ok, n_failed=n_failed)
