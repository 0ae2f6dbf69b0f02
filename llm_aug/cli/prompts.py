"""``prompts list|show|render|compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, TASK, exit_codes
from llm_aug.cli.llm import (
    LLM_EXIT_CODES,
    MAX_TOKENS,
    SAMPLES,
    SEED,
    SHOTS,
    STRATEGY,
    TEMPERATURE,
    TRAIN,
    exit_if_rows_failed,
)
from llm_aug.cli.llm_options import LLMOptions, with_llm_options
from llm_aug.core.errors import UserError
from llm_aug.core.exit_codes import ExitCode

if TYPE_CHECKING:
    from llm_aug.jobs.compare_prompts import CompareReport

app = typer.Typer(help="List, show, render and A/B-compare prompt templates.", no_args_is_help=True)


@app.command("list")
@exit_codes(COMMON_EXIT_CODES)
def list_cmd() -> None:
    """Every shipped prompt with its version, tasks and output format.

    Example: llm-aug prompts list

    Exit codes:
      {exit_codes}
    """
    from llm_aug.prompting import list_prompts

    for info in list_prompts():
        tasks = info.tasks if isinstance(info.tasks, str) else ",".join(info.tasks or [])
        typer.echo(f"{info.name:<32} {tasks:<12} {info.output:<5} {info.description}")


@app.command()
@exit_codes(COMMON_EXIT_CODES)
def show(name: str = typer.Argument(..., help="Prompt name, e.g. classify/scene_levels.v1.")) -> None:
    """Print a prompt's template file, with its content hash.

    Example: llm-aug prompts show classify/structured

    Exit codes:
      {exit_codes}
    """
    from llm_aug.prompting import load_prompt

    prompt = load_prompt(name)
    typer.echo(f"# {prompt.name}  sha256={prompt.sha256}  ({prompt.info.path})")
    typer.echo(Path(prompt.info.path).read_text(encoding="utf-8"))


@app.command()
@exit_codes(COMMON_EXIT_CODES)
def render(
    name: str = typer.Argument(..., help="Prompt name."),
    task: str = TASK,
    input_file: Path = typer.Option(..., "--input", "-i", help="File holding the post."),
    row: int = typer.Option(1, "--row", help="1-based data row to render."),
    shots: int = SHOTS, shot_strategy: str = STRATEGY, train: Optional[Path] = TRAIN,
) -> None:
    """Render a prompt for one post exactly as the model would receive it.

    Example: llm-aug prompts render classify/fewshot --task fine --input val.tsv --row 3 --shots 3 --train train.tsv

    Exit codes:
      {exit_codes}
    """
    from llm_aug.data.io import Dataset, load_dataset
    from llm_aug.data.schemes import scheme_for_task
    from llm_aug.prompting import load_prompt
    from llm_aug.prompting.classify import ClassifyConfig, build_requests

    scheme = scheme_for_task(task)
    data = load_dataset(input_file, scheme, require_labels=False)
    if not 1 <= row <= len(data):
        raise UserError(f"--row {row} is outside 1..{len(data)}")
    one = Dataset([data.rows[row - 1]], data.path, scheme)
    train_data = load_dataset(train, scheme) if train else None
    cfg = ClassifyConfig(prompt=name, shots=shots, shot_strategy=shot_strategy)
    requests, meta = build_requests(one, scheme, load_prompt(name), cfg, train_data)
    for msg in requests[0].messages:
        typer.echo(f"<|{msg.role}|>\n{msg.content}")
    if meta[one.rows[0].id]:
        typer.echo(json.dumps(meta[one.rows[0].id], ensure_ascii=False))


@app.command()
@with_llm_options
@exit_codes({**LLM_EXIT_CODES, ExitCode.OK: "every post answered under both prompts",
             ExitCode.ROWS_FAILED: 'report written, but some posts failed: their "error" field in '
                                   'OUT/<prompt>/predictions.jsonl says why'})
def compare(
    prompt_a: str = typer.Argument(..., help="Prompt A (baseline)."),
    prompt_b: str = typer.Argument(..., help="Prompt B (candidate)."),
    task: str = TASK,
    input_file: Path = typer.Option(..., "--input", "-i", help="Posts to classify."),
    gold: Optional[Path] = typer.Option(None, "--gold", "-g", help="Gold labels (default: the input's labels)."),
    out: Path = typer.Option(Path("runs/prompt-compare"), "--out", "-o", help="Output directory."),
    shots: int = SHOTS, shot_strategy: str = STRATEGY, train: Optional[Path] = TRAIN,
    samples: int = SAMPLES, temperature: Optional[float] = TEMPERATURE, max_tokens: int = MAX_TOKENS,
    seed: int = SEED,
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
    html: bool = typer.Option(False, "--html", help="Also write comparison.html."),
    llm: Optional[LLMOptions] = None,
) -> None:
    """Run prompts A and B on the same posts; print metric deltas (B - A) with paired bootstrap CIs.

    Items whose prediction flipped go to OUT/flips.jsonl with both replies.
    Example: llm-aug prompts compare classify/scene.v1 classify/scene_levels.v1 --task fine --input val.tsv --backend llamacpp --model test

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.compare_prompts import compare_prompts
    from llm_aug.prompting.classify import ClassifyConfig

    cfg = ClassifyConfig(shots=shots, shot_strategy=shot_strategy, samples=samples,
                         temperature=temperature, max_tokens=max_tokens, seed=seed)
    assert llm is not None  # supplied by with_llm_options
    report = compare_prompts(prompt_a, prompt_b, task, input_file, llm=llm.config(out / "llm-cache.sqlite"), out=out, gold=gold,
                             config=cfg, train=train, n_boot=n_boot, html=html, batch=llm.batch_mode)
    show_compare(report)


def show_compare(report: CompareReport) -> None:
    """The comparison table; exit 4 when rows failed (also what ``batch collect`` prints for a compare run)."""
    from llm_aug.jobs.compare_prompts import format_report

    typer.echo(format_report(report))
    failed, ok, predictions = report.failed, report.ok, report.predictions
    where = ", ".join(str(path) for path, n in ((predictions.a, failed.a), (predictions.b, failed.b)) if n)
    exit_if_rows_failed(ok.a + ok.b, failed.a + failed.b, where)
