"""``llm-aug batch status/collect`` over a run made with ``--batch export|submit`` (:mod:`llm_aug.cli.batch_mode`).

``collect`` imports the answers into the request cache and continues the recorded job
through the jobs API (``llm_aug.jobs.batch_collect``); this module prints what the job's
own command prints (its presenter), so the output is the one a live run gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from llm_aug.cli.batch_mode import report_deferred
from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes
from llm_aug.core.exit_codes import ExitCode

if TYPE_CHECKING:  # the LLM runtime is imported by the functions that use it (keeps --help fast)
    from llm_aug.jobs.results import JobResult
    from llm_aug.llm.batch import JobCall

#: ``batch status`` polls the server: its 2 is the table's (unreachable, key rejected).
STATUS_EXIT_CODES: dict[ExitCode, str | None] = {**COMMON_EXIT_CODES, ExitCode.USER_ERROR: None}
#: ``batch collect`` exits as the job it continues would (classify, prompts compare, augment).
COLLECT_EXIT_CODES: dict[ExitCode, str | None] = {
    **STATUS_EXIT_CODES,
    ExitCode.OK: "collected (or nothing to collect, or batches still running); a continued job answered every post",
    ExitCode.LEVEL_SHORT: "the continued augment run left a level short (reported, never padded)",
    ExitCode.ROWS_FAILED: 'the continued job wrote its outputs, but some rows failed: their "error" field says why',
    ExitCode.INTERRUPTED: None}

app = typer.Typer(help="Batch inference runs (made with --batch export|submit): status and collect.",
                  no_args_is_help=True)


@app.command()
@exit_codes(STATUS_EXIT_CODES)
def status(
    run: Path = typer.Argument(..., help="Batch run directory (holds batch.json)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-local server URL."),
) -> None:
    """Poll the run's batches and print one line per request file.

    Example: llm-aug batch status runs/zs/predictions.batch

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.batch import batch_status

    for row in batch_status(run, allow_remote=allow_remote).files:
        counts = " ".join(f"{k}={v}" for k, v in sorted(row.request_counts.items()))
        typer.echo(f"cycle {row.cycle} {row.file}: {row.status} {row.batch_id or '-'} "
                   f"requests={row.requests} {counts}{' collected' if row.collected else ''}")


@app.command()
@exit_codes(COLLECT_EXIT_CODES)
def collect(
    run: Path = typer.Argument(..., help="Batch run directory (holds batch.json)."),
    results: Optional[List[Path]] = typer.Option(None, "--results", "-r", help="Local output file of `vllm run-batch` (repeatable); default: download finished batches."),
    live: bool = typer.Option(False, "--live", help="In the rerun, send requests still unanswered live instead of as a new batch (an exported cycle without --results is closed unanswered)."),
    rerun: bool = typer.Option(True, "--rerun/--no-rerun", help="Continue the recorded job once every batch is collected."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-local server URL."),
) -> None:
    """Import finished batches into the request cache, then continue the recorded job.

    A second collect is a no-op. Failed or missing lines are not cached: the continued job
    sends them as a new batch cycle (or live with --live).

    Example: llm-aug batch collect runs/zs/predictions.batch --results results.jsonl

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.batch import batch_collect, resume_recorded_job

    # Collected first and reported before the job goes on: its lines come after this one.
    done = batch_collect(run, results=results or (), allow_remote=allow_remote, live=live, continue_job=False)
    result, command = done.collected, done.manifest.command
    if result.stale:
        typer.echo(f"nothing new: {', '.join(result.stale)} already imported; cycle {result.cycle} "
                   f"waits for the results of its files requests-c{result.cycle}-*.jsonl", err=True)
        return
    if result.nothing_to_do:
        typer.echo(f"nothing to collect in {run}: every batch is imported (if its rerun stopped, "
                   f"finish live with: llm-aug {' '.join(command)})", err=True)
        return
    typer.echo(f"cycle {result.cycle}: " + " ".join(f"{k}={v}" for k, v in result.imported.items()),
               err=True)
    if not result.closed:
        typer.echo(f"waiting for {', '.join(result.waiting)}; collect again later", err=True)
        return
    if not rerun:
        typer.echo("rerun: llm-aug " + " ".join(command), err=True)
        return
    job = done.manifest.job
    extra = {"on_plan": typer.echo} if job is not None and job.job == "run_augment" else {}
    job_result, deferred = resume_recorded_job(done.manifest, Path(run), live=live, job_kwargs=extra)
    if deferred is not None:
        report_deferred(deferred)
    elif job is not None:
        _present(job, job_result)


def _present(job: JobCall, result: JobResult | None) -> None:
    """Print the continued job's result as its own command does (same lines, same exit code)."""
    if job.job == "classify":
        from llm_aug.cli.llm import show_classify

        show_classify(result)
    elif job.job == "compare_prompts":
        from llm_aug.cli.prompts import show_compare

        show_compare(result)
    elif job.job == "compare_matrix":
        from llm_aug.cli.prompts import show_matrix

        show_matrix(result)
    elif job.job == "optimize_prompt":
        from llm_aug.jobs.optimize_prompt import format_report

        typer.echo(format_report(result))
    elif job.job == "run_augment":
        from llm_aug.cli.augment import show_augment

        show_augment(result, dry_run=False)
