"""``experiment run`` and ``experiment report``: the whole comparison matrix from one YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes
from llm_aug.core.exit_codes import ExitCode

app = typer.Typer(help="Run an experiment matrix from a YAML config and report it.", no_args_is_help=True)

OUT = typer.Option(Path("runs/experiment"), "--out", "-o", help="Output folder (results, run.json, report).")
#: ``experiment run``: finished steps are cached, so a rerun (after 1, 130 or 143) goes on from them.
RUN_EXIT_CODES: dict[ExitCode, str | None] = {
    **COMMON_EXIT_CODES, ExitCode.OK: "every step done (computed now or cached)",
    ExitCode.STEPS_FAILED: "some steps failed: each is listed with its reason in OUT/run.json and the "
                           "report; the others are done",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); finished steps are cached, rerun the same command to go on"}
README = typer.Option(None, "--readme", help="Also write the summary table into this Markdown file, between "
                      "its <!-- experiment-results:begin --> and <!-- experiment-results:end --> lines.")


@app.command()
@exit_codes(RUN_EXIT_CODES)
def run(
    config: Path = typer.Argument(..., help="Experiment YAML (see experiments/sos1k.yaml)."),
    out: Path = OUT,
    only: Optional[str] = typer.Option(None, "--only", help="Compute only steps whose id (task/system/train_set/sN) matches this glob or substring; comma-separate several."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with fine/ binary/ paper-augmented/ (overrides the config)."),
    eval_split: Optional[str] = typer.Option(None, "--eval-split", help="val (default) or test: which split to score; selection always uses val."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the steps and which are cached; compute nothing."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.md and report.html afterwards."),
    readme: Optional[Path] = README,
) -> None:
    """Train, predict and evaluate every step not already cached; record skipped/failed steps.

    Examples:
      llm-aug experiment run experiments/sos1k.yaml --out runs/sos1k
      llm-aug experiment run experiments/sos1k.yaml --out runs/sos1k --only 'fine/stack/*'
      llm-aug experiment run experiments/ci.yaml --dry-run

    Exit codes:
      {exit_codes}
    """
    from llm_aug.experiment import load_config, plan, run_experiment, write_report

    resolved = load_config(config, data_dir, eval_split)
    if dry_run:
        rows = plan(resolved, out, only)
        for step, key, _, status in rows:
            typer.echo(f"{status:<13} {step.id}  {key[:12]}")
        todo = sum(r[3] == "to-compute" for r in rows)
        typer.echo(f"{len(rows)} steps: {todo} to compute, {sum(r[3] == 'cached' for r in rows)} cached")
        return
    summary = run_experiment(resolved, out, only=only)
    counts = summary["counts"]
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + f" in {summary['wall_seconds']:.0f} s -> {out}")
    if report:
        paths = write_report(out, readme)
        typer.echo("report: " + " ".join(str(p) for p in paths.values()))
    if counts.get("failed"):
        raise typer.Exit(ExitCode.STEPS_FAILED)


@app.command("report")
@exit_codes(COMMON_EXIT_CODES)
def report_cmd(out: Path = OUT, readme: Optional[Path] = README) -> None:
    """Write OUT/report.md, a self-contained OUT/report.html and OUT/summary.md from the last run.

    Example (the README's results table):
      llm-aug experiment report --out runs/sos1k --readme README.md

    Exit codes:
      {exit_codes}
    """
    from llm_aug.experiment import write_report

    paths = write_report(out, readme)
    typer.echo("\n".join(str(p) for p in paths.values()))
