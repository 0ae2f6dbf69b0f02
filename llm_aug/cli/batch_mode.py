"""The ``--batch export|submit`` flags of LLM commands: the mode they ask for, and the report of a deferral.

``--batch export|submit`` on any LLM command makes a :class:`~llm_aug.llm.batch.BatchMode`
that the command hands to its job (``batch=``); the job writes (and with ``submit``
uploads) the requests it would send, records itself in the run directory and stops
(exit 0). ``llm-aug batch collect RUN`` (:mod:`llm_aug.cli.batch`) finishes the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer

from llm_aug.core.errors import UserError

if TYPE_CHECKING:  # the LLM runtime is imported by the functions that use it (keeps --help fast)
    from llm_aug.llm.batch import BatchDeferred, BatchMode

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
    """The batch mode asked for by the flags (the command hands it to its job), or None."""
    from llm_aug.llm.batch import BatchMode

    if batch is None:
        if batch_dir is not None:
            raise UserError("--batch-dir needs --batch export or --batch submit")
        return None
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


def report_deferred(d: BatchDeferred) -> None:
    """What a run that wrote a batch cycle prints: stdout JSON, the next step on stderr."""
    typer.echo(json.dumps({"batch": {"run_dir": str(d.run_dir), "cycle": d.cycle,
                                     "requests": d.n_requests, "files": d.files,
                                     "submitted": d.submitted}}, indent=2))
    typer.echo(_next_step(d), err=True)


def run_deferrable(call: Callable[[], Any]) -> Any:
    """Run a command's body; a deferral to batch files is reported, not an error (exit 0)."""
    from llm_aug.llm.batch import BatchDeferred

    try:
        return call()
    except BatchDeferred as d:
        report_deferred(d)
        return None
