"""``export-dataset``: an augment run as a Hugging Face ``datasets`` folder."""

from __future__ import annotations

from pathlib import Path

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes


def register(app: typer.Typer) -> None:
    """Add ``export-dataset`` to ``app``."""
    app.command("export-dataset")(export_dataset)


@exit_codes(COMMON_EXIT_CODES)
def export_dataset(
    run: Path = typer.Argument(..., help="An `llm-aug augment` output folder (corpus.jsonl, manifest.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="The dataset folder to write (new or empty)."),
    license: str = typer.Option("other", "--license", help="License id for the card (default other, with a note)."),
) -> None:
    """Write DIR/data/train-00000-of-00001.parquet and a dataset card (README.md with YAML).

    The folder loads with datasets.load_dataset(DIR), offline. The card gives the task,
    label scheme, sizes per level, prompts (name and sha256), model, filters and what they
    removed, the review status and a content warning. Pushing to the Hub is not done here.

    Example: llm-aug export-dataset runs/eda --out runs/eda-hf

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.export_dataset import export_dataset as job

    result = job(run, out, license=license)
    typer.echo(f"{result.rows['train']} rows ({result.n_synthetic} synthetic) -> {out} "
               f"({', '.join(result.files)})")
