"""Batch inference from the command line: the ``--batch`` mode of LLM commands, ``batch status/collect``.

``--batch export|submit`` on any LLM command writes (and with ``submit`` uploads) the
requests the command would send, records the command in the run directory and stops
(exit 0). ``llm-aug batch collect RUN`` imports the answers into the request cache and
reruns the recorded command in this process: it finds them there and goes on exactly as
after a live run (the next round, if any, becomes the next batch cycle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import typer

from llm_aug.core.errors import UserError
from llm_aug.core.progress import is_quiet

if TYPE_CHECKING:  # the LLM runtime is imported by the functions that use it (keeps --help fast)
    from llm_aug.llm.batch import BatchDeferred, BatchMode

app = typer.Typer(help="Batch inference runs (made with --batch export|submit): status and collect.",
                  no_args_is_help=True)

#: LLMOptions fields that are batch flags: not part of the recorded command.
BATCH_FLAGS = ("batch", "batch_dir", "batch_max_requests")
MODES = ("export", "submit")


def _arg_text(value: Any) -> str:
    if isinstance(value, Path):
        return os.path.abspath(value)  # the rerun may start elsewhere
    return str(getattr(value, "value", value))


def command_argv(ctx: typer.Context, skip: tuple[str, ...] = BATCH_FLAGS) -> list[str]:
    """The running subcommand as arguments that reproduce it (paths made absolute).

    Parameters are read by their click attributes (typer vendors its own click).
    """
    names, c = [], ctx
    while c.parent is not None:
        names.append(c.info_name or "")
        c = c.parent
    argv = list(reversed(names))
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in skip or value is None or param.name not in ctx.params:
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if param.param_type_name == "argument":
            argv += [_arg_text(v) for v in values]
        elif getattr(param, "count", False):
            argv += [param.opts[0]] * int(value)
        elif getattr(param, "is_flag", False):
            if value != param.default:
                argv.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
        else:
            for v in values:
                argv += [param.opts[0], _arg_text(v)]
    return argv


def _default_dir(kwargs: dict[str, Any]) -> Path:
    """Beside the output: ``OUTPUT.batch/`` for an output file, ``OUT/batch/`` for a directory."""
    if kwargs.get("output") is not None:
        output = Path(kwargs["output"])
        return output.with_name(output.stem + ".batch")
    if kwargs.get("out") is not None:
        return Path(kwargs["out"]) / "batch"
    raise UserError("--batch needs --batch-dir DIR for this command")


def make_mode(batch: Optional[str], batch_dir: Optional[Path], max_requests: int,
              kwargs: dict[str, Any], ctx: typer.Context) -> BatchMode | None:
    """The batch mode asked for by the flags, else the one a ``batch collect`` rerun set, else None."""
    from llm_aug.llm.batch import BatchMode, current_batch_mode

    if batch is None:
        if batch_dir is not None:
            raise UserError("--batch-dir needs --batch export or --batch submit")
        return current_batch_mode()
    if batch not in MODES:
        raise UserError(f"--batch takes export or submit, not {batch!r}")
    if max_requests < 1:
        raise UserError("--batch-max-requests must be at least 1")
    run_dir = Path(os.path.abspath(batch_dir or _default_dir(kwargs)))
    return BatchMode(batch, run_dir, command_argv(ctx),  # type: ignore[arg-type]
                     max_requests=max_requests)


def _next_step(d: BatchDeferred) -> str:
    if d.submitted:
        return (f"submitted {d.n_requests} request(s) as {len(d.files)} batch(es); check with "
                f"`llm-aug batch status {d.run_dir}`, then `llm-aug batch collect {d.run_dir}`")
    first = d.run_dir / d.files[0]
    return (f"wrote {d.n_requests} request(s) in {len(d.files)} file(s) to {d.run_dir}; submit them "
            f"(rerun this command with --batch submit) or run each file with `vllm run-batch -i {first} "
            f"-o {first.with_name(first.stem + '.results.jsonl')} --model <weights> --served-model-name "
            f"{d.model}`, then `llm-aug batch collect {d.run_dir} --results <each -o file>`")


def run_deferrable(mode: BatchMode | None, call: Callable[[], Any]) -> Any:
    """Run a command's body under ``mode``; a deferral is reported (stdout JSON, stderr next step)."""
    from llm_aug.llm.batch import BatchDeferred, batch_mode

    with batch_mode(mode):
        try:
            return call()
        except BatchDeferred as d:
            typer.echo(json.dumps({"batch": {"run_dir": str(d.run_dir), "cycle": d.cycle,
                                             "requests": d.n_requests, "files": d.files,
                                             "submitted": d.submitted}}, indent=2))
            typer.echo(_next_step(d), err=True)
            return None


@app.command()
def status(
    run: Path = typer.Argument(..., help="Batch run directory (holds batch.json)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-local server URL."),
) -> None:
    """Poll the run's batches and print one line per request file.

    Example: llm-aug batch status runs/zs/predictions.batch
    """
    from llm_aug.jobs.batch import batch_status

    for row in batch_status(run, allow_remote=allow_remote):
        counts = " ".join(f"{k}={v}" for k, v in sorted(row["request_counts"].items()))
        typer.echo(f"cycle {row['cycle']} {row['file']}: {row['status']} {row['batch_id'] or '-'} "
                   f"requests={row['requests']} {counts}{' collected' if row['collected'] else ''}")


@app.command()
def collect(
    run: Path = typer.Argument(..., help="Batch run directory (holds batch.json)."),
    results: Optional[List[Path]] = typer.Option(None, "--results", "-r", help="Local output file of `vllm run-batch` (repeatable); default: download finished batches."),
    live: bool = typer.Option(False, "--live", help="In the rerun, send requests still unanswered live instead of as a new batch (an exported cycle without --results is closed unanswered)."),
    rerun: bool = typer.Option(True, "--rerun/--no-rerun", help="Rerun the recorded command once every batch is collected."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-local server URL."),
) -> None:
    """Import finished batches into the request cache, then rerun the recorded command.

    A second collect is a no-op. Failed or missing lines are not cached: the rerun sends
    them as a new batch cycle (or live with --live).

    Example: llm-aug batch collect runs/zs/predictions.batch --results results.jsonl
    """
    from llm_aug.jobs.batch import batch_collect
    from llm_aug.llm.batch import BatchMode

    result = batch_collect(run, results=results or (), allow_remote=allow_remote, live=live)
    if result.stale:
        typer.echo(f"nothing new: {', '.join(result.stale)} already imported; cycle {result.cycle} "
                   f"waits for the results of its files requests-c{result.cycle}-*.jsonl", err=True)
        return
    if result.nothing_to_do:
        typer.echo(f"nothing to collect in {run}: every batch is imported (if its rerun stopped, "
                   f"finish live with: llm-aug {' '.join(result.command)})", err=True)
        return
    typer.echo(f"cycle {result.cycle}: " + " ".join(f"{k}={v}" for k, v in result.imported.items()),
               err=True)
    if not result.closed:
        typer.echo(f"waiting for {', '.join(result.waiting)}; collect again later", err=True)
        return
    if not rerun:
        typer.echo("rerun: llm-aug " + " ".join(result.command), err=True)
        return
    mode = None if live else BatchMode(result.mode, Path(os.path.abspath(run)),  # type: ignore[arg-type]
                                       list(result.command))
    code = _rerun(result.command, mode)
    if code:
        raise typer.Exit(code)


def _rerun(command: list[str], mode: BatchMode | None) -> int:
    """Run the recorded command in this process under ``mode``; its exit code."""
    from llm_aug.cli import app as root  # the root app imports this module
    from llm_aug.llm.batch import batch_mode

    args = (["--quiet"] if is_quiet() else []) + list(command)
    with batch_mode(mode):
        code = typer.main.get_command(root).main(args, standalone_mode=False)
    return code if isinstance(code, int) else 0
