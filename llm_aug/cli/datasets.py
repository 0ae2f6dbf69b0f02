"""``export-dataset``: an augment run as a Hugging Face ``datasets`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes
from llm_aug.core.exit_codes import ExitCode

EXPORT_EXIT_CODES = {**COMMON_EXIT_CODES, ExitCode.USER_ERROR: (
    "bad input or option, a full disk, or --push-to-hub refused (HF_HUB_OFFLINE, no token, an existing "
    "public repo without --public, the Hub unreachable): one line on stderr says which")}


def register(app: typer.Typer) -> None:
    """Add ``export-dataset`` to ``app``."""
    app.command("export-dataset")(export_dataset)


@exit_codes(EXPORT_EXIT_CODES)
def export_dataset(
    run: Path = typer.Argument(..., help="An `llm-aug augment` output folder (corpus.jsonl, manifest.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="The dataset folder to write (new or empty)."),
    license: str = typer.Option("other", "--license", help="License id for the card (default other, with a note)."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Then upload the folder to this Hub dataset repo (OWNER/NAME), private; token from HF_TOKEN or `hf auth login`; refused under HF_HUB_OFFLINE=1."),
    public: bool = typer.Option(False, "--public", help="With --push-to-hub: create the repo public (the posts are sensitive: private is the default)."),
) -> None:
    """Write DIR/data/train-00000-of-00001.parquet and a dataset card (README.md with YAML).

    The folder loads with datasets.load_dataset(DIR), offline. The card gives the task,
    label scheme, sizes per level, prompts (name and sha256), model, filters and what they
    removed, the review status and a content warning. --push-to-hub REPO then uploads it
    (huggingface_hub, HF_ENDPOINT honoured), private unless --public; the upload is logged
    before anything is sent.

    Examples:
      llm-aug export-dataset runs/eda --out runs/eda-hf
      llm-aug export-dataset runs/eda --out runs/eda-hf --push-to-hub my-lab/sos-eda --license cc-by-nc-4.0

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.export_dataset import export_dataset as job

    result = job(run, out, license=license, push_to_hub=push_to_hub, public=public)
    typer.echo(f"{result.rows['train']} rows ({result.n_synthetic} synthetic) -> {out} "
               f"({', '.join(result.files)})")
    if result.hub is not None:
        typer.echo(f"pushed to {result.hub.url} ({'private' if result.hub.private else 'public'})")
