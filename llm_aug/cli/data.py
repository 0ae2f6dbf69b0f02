"""``data stats``, ``data fetch`` and ``data convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, FORMAT, ID_COL, LABEL_COL, TEXT_COL, exit_codes, load_kwargs
from llm_aug.core.errors import UserError

app = typer.Typer(help="Inspect and fetch data files.", no_args_is_help=True)


@app.command()
@exit_codes(COMMON_EXIT_CODES)
def stats(
    files: list[Path] = typer.Argument(..., help="One or more files; with several, overlap between each pair is shown."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="fine or binary: validate labels against the scheme."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    text_col: str = TEXT_COL, label_col: str = LABEL_COL, id_col: Optional[str] = ID_COL,
    fmt: Optional[str] = FORMAT,
) -> None:
    """Counts per label, length distribution, duplicates, and train/val/test overlap.

    Example: llm-aug data stats train.tsv val.tsv test.tsv --task fine

    Exit codes:
      {exit_codes}
    """
    from llm_aug.data.io import load_dataset  # imported here: numpy, pydantic (keep --help fast)
    from llm_aug.data.schemes import scheme_for_task
    from llm_aug.data.stats import dataset_stats, split_overlap

    scheme = scheme_for_task(task) if task else None
    kwargs = load_kwargs(text_col, label_col, id_col, fmt)
    datasets = [load_dataset(f, scheme, require_labels=False, **kwargs) for f in files]
    report = {"files": [dataset_stats(d) for d in datasets], "overlap": split_overlap(datasets)}
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for s in report["files"]:
        ln = s["length"]
        typer.echo(f"{s['file']}: {s['rows']} rows, {s['duplicate_rows']} duplicate rows, "
                   f"length min {ln['min']} median {ln['median']:.0f} max {ln['max']} (chars)")
        typer.echo("  per label: " + "  ".join(f"{k}:{v}" for k, v in s["labels"].items()))
    for o in report["overlap"]:
        flag = "  <-- shared (leakage if this pairs training with val/test)" if o["shared_texts"] else ""
        typer.echo(f"overlap {o['a']} x {o['b']}: {o['shared_texts']} shared texts{flag}")


@app.command()
@exit_codes(COMMON_EXIT_CODES)
def fetch(
    name: str = typer.Argument("sos1k", help="Data set name (only sos1k)."),
    dest: Path = typer.Option(..., "--dest", "-d", help="Directory to write fine/ and binary/ into."),
    source: Optional[Path] = typer.Option(None, "--from", help="Copy a local copy (e.g. ../shared/data/sos1k) instead of downloading."),
) -> None:
    """Download the public SOS-1K files from the authors' GitHub repository (or copy a local copy).

    Example: llm-aug data fetch sos1k --dest data/sos1k --from ../shared/data/sos1k

    Exit codes:
      {exit_codes}
    """
    from llm_aug.core.manifest import write_manifest
    from llm_aug.data.fetch import copy_local, download

    if name != "sos1k":
        raise UserError(f"unknown data set {name!r}; only 'sos1k' can be fetched")
    files = copy_local(source, dest) if source else download(dest)
    write_manifest(dest, "data fetch", data_files=files, config={"name": name, "from": str(source) if source else "github"})
    typer.echo(f"{len(files)} files in {dest}")


@app.command()
@exit_codes(COMMON_EXIT_CODES)
def convert(
    src: Path = typer.Argument(..., help="A TSV, CSV, JSONL or Parquet file (a corpus, a data split, predictions)."),
    dest: Path = typer.Argument(..., help="The file to write: .tsv, .jsonl or .parquet (the format)."),
    fmt: Optional[str] = FORMAT,
) -> None:
    """Convert a data, corpus or predictions file between TSV, JSONL and Parquet.

    Every column and row is kept as it is (TSV values stay text); every command that
    reads TSV or JSONL also reads the Parquet file.

    Example: llm-aug data convert runs/eda/corpus.tsv runs/eda/corpus.parquet

    Exit codes:
      {exit_codes}
    """
    from llm_aug.data.io import read_records
    from llm_aug.data.parquet import write_records

    if dest.resolve() == src.resolve():
        raise UserError(f"{dest}: the output would overwrite the input")
    header, records = read_records(src, fmt)
    out_fmt = write_records(dest, header, records)
    typer.echo(f"{len(records)} rows, {len(header)} columns -> {dest} ({out_fmt})")
