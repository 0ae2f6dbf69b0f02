"""``llm-aug review``: human review of an ``augment`` run in a local web app, its status and export.

``llm-aug review RUN`` serves the app (``review serve RUN`` is the same); ``review status
RUN`` and ``review export RUN`` work on the decisions log (RUN/review.jsonl) without it.
The web stack (starlette, uvicorn) is imported inside the commands, so ``llm-aug --help``
stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from typer.core import TyperGroup

from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes
from llm_aug.core.exit_codes import ExitCode

if TYPE_CHECKING:
    from llm_aug.jobs.review.export import ReviewExportResult
    from llm_aug.jobs.review.items import ReviewRun
    from llm_aug.jobs.review.store import Decision

SERVE_EXIT_CODES: dict[ExitCode, str | None] = {
    **COMMON_EXIT_CODES, ExitCode.OK: "the server stopped; every acknowledged decision is in RUN/review.jsonl",
    ExitCode.USER_ERROR: "not an augment run, a bad review.jsonl, or the port is busy (one line on stderr says which)",
    ExitCode.INTERRUPTED: "stopped with Ctrl-C; every acknowledged decision is in RUN/review.jsonl"}
RUN_ARG = typer.Argument(..., help="An `llm-aug augment` output folder (corpus.jsonl, manifest.json).")
REVIEWER = typer.Option(None, "--reviewer", help="Reviewer name recorded with each decision (default: $USER).")


class RunOrCommand(TyperGroup):
    """A group whose first argument, when it is not one of its commands, is RUN for ``serve``.

    So ``llm-aug review RUN --port 8765`` serves RUN, and ``llm-aug review export RUN``
    still reaches ``export``.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["serve", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=RunOrCommand, no_args_is_help=True,
                  help="Review an augment run's synthetic posts: `llm-aug review RUN` serves the local app; "
                       "status and export work on RUN/review.jsonl.")


def register(root: typer.Typer) -> None:
    """Add the ``review`` group to the root app."""
    root.add_typer(app, name="review")


@app.command("serve")
@exit_codes(SERVE_EXIT_CODES)
def serve(
    run: Path = RUN_ARG,
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (the app never listens elsewhere)."),
    reviewer: Optional[str] = REVIEWER,
    no_open: bool = typer.Option(False, "--no-open", help="Print the URL only; do not open a browser."),
) -> None:
    """Serve the review app for RUN on http://127.0.0.1:PORT (also: llm-aug review RUN).

    One post at a time with its intended level, the level's definition, the exemplars it
    was made from, its filter scores and its nearest training posts. Keys: a accept,
    r reject (then 1-7 for the reason), l relabel (then the level), s skip, j/k or
    arrows to move, ? help. Each decision is appended to RUN/review.jsonl and synced
    to disk before the page shows it as saved. The URL carries a random token made for
    this session; nothing is served to other machines and nothing is fetched from outside.

    Example: llm-aug review runs/eda --reviewer alice

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.review.server import ReviewServer

    server = ReviewServer(run, port=port, reviewer=reviewer)
    typer.echo(f"reviewing {server.n_items} synthetic posts of {run} as {server.reviewer}")
    typer.echo(f"open {server.url}")
    typer.echo("press Ctrl-C to stop; every saved decision is already on disk", err=True)
    server.run(open_browser=not no_open)


@app.command("status")
@exit_codes(COMMON_EXIT_CODES)
def status(run: Path = RUN_ARG) -> None:
    """Print review progress per level, per reviewer, and agreement (Cohen's kappa) per level.

    Example: llm-aug review status runs/eda

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.review.items import load_review_run
    from llm_aug.jobs.review.store import REVIEW_FILE, ReviewLog

    review_run = load_review_run(run, n_neighbours=0)
    decisions = ReviewLog(Path(run) / REVIEW_FILE).read()
    typer.echo(format_status(review_run, decisions))


@app.command("export")
@exit_codes(COMMON_EXIT_CODES)
def export(run: Path = RUN_ARG, reviewer: Optional[str] = typer.Option(
        None, "--reviewer", help="Use only this reviewer's decisions (default: all; conflicting ones are counted).")) -> None:
    """Rebuild RUN's corpus (corpus.tsv or .parquet, corpus.jsonl) from the review: accepted and relabelled posts kept.

    Re-runnable: always rebuilt from the generated corpus (kept as corpus.generated.jsonl).
    Writes review-rejected.jsonl, review-relabelled.jsonl, review-report.md (per level:
    generated, kept, relabelled, rejected, undecided, shortfall) and a "review" section in
    manifest.json.

    Example: llm-aug review export runs/eda

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.review.export import export_review

    typer.echo(format_export(export_review(run, reviewer=reviewer)))


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def format_status(run: ReviewRun, decisions: list[Decision]) -> str:
    """Progress per level for each reviewer, then agreement per reviewer pair and level."""
    from llm_aug.jobs.review.status import agreement, progress

    reviewers = sorted({d.reviewer for d in decisions})
    lines = [f"{run.run}: {len(run.items)} synthetic posts, {len(decisions)} decisions, "
             f"reviewers: {', '.join(reviewers) or 'none yet'}"]
    for name in reviewers:
        lines += ["", f"reviewer {name}", "level  total  decided  accepted  rejected  relabelled  skipped"]
        lines += [f"{p.level:>5}  {p.total:>5}  {p.decided:>7}  {p.accepted:>8}  {p.rejected:>8}  "
                  f"{p.relabelled:>10}  {p.skipped:>7}" for p in progress(run, decisions, name)]
    for pair in agreement(run, decisions):
        lines += ["", f"agreement {pair.reviewers[0]} / {pair.reviewers[1]}: {pair.n_both} posts decided by both, "
                      f"{_fmt(pair.percent, '.1f')}% agree, kappa {_fmt(pair.kappa)}",
                  "level  both  agree%  kappa"]
        lines += [f"{level:>5}  {cell['n']:>4}  {_fmt(cell['percent'], '.1f'):>5}  {_fmt(cell['kappa'])}"
                  for level, cell in sorted(pair.per_level.items())]
    return "\n".join(lines)


EXPORT_COLUMNS = ("original", "generated", "accepted", "relabelled_out", "relabelled_in", "rejected",
                  "undecided", "conflict", "final", "target", "shortfall")


def format_export(result: ReviewExportResult) -> str:
    """A summary line, the per-level balance and the files written."""
    head = "level  " + "  ".join(EXPORT_COLUMNS)
    rows = ["  ".join([f"{level:>5}", *(f"{str(cells.get(c, '-')):>{len(c)}}" for c in EXPORT_COLUMNS)])
            for level, cells in sorted(result.per_level.items())]
    return "\n".join([
        f"{result.run}: kept {result.kept} synthetic posts (relabelled {result.relabelled}), rejected "
        f"{result.rejected}, undecided {result.undecided} and conflicting {result.conflicts} left out",
        "", head, *rows, "",
        "wrote " + ", ".join(str(Path(result.run) / f) for f in result.files)])
