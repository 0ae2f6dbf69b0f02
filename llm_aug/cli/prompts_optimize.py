"""``prompts optimize``: search exemplar sets (and wordings) for a prompt within a request budget."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llm_aug.cli.common import TASK, exit_codes
from llm_aug.cli.llm import LLM_EXIT_CODES, MAX_TOKENS, SEED
from llm_aug.cli.llm_options import LLMOptions, with_llm_options
from llm_aug.core.exit_codes import ExitCode


@with_llm_options
@exit_codes({**LLM_EXIT_CODES, ExitCode.OK: "search done, report written (a winner only if one beat the base)"})
def optimize(
    base: str = typer.Argument(..., help="Base prompt (name or .jinja file) taking exemplars, e.g. classify/fewshot."),
    task: str = TASK,
    train: Path = typer.Option(..., "--train", help="Labelled train file: exemplar pool and CV folds."),
    val: Path = typer.Option(..., "--val", help="Labelled val file: the one confirmation of the winner."),
    budget: int = typer.Option(..., "--budget", help="Most LLM requests the search may send (cached ones are free)."),
    out: Path = typer.Option(Path("runs/prompt-optimize"), "--out", "-o", help="Output directory."),
    folds: int = typer.Option(3, "--folds", help="Train cross-validation folds."),
    candidates: int = typer.Option(8, "--candidates", help="Exemplar sets to draw."),
    shots: int = typer.Option(3, "--shots", help="Exemplars per set."),
    variants: Optional[Path] = typer.Option(None, "--variants", help="Folder of instruction variants "
                                            "(prompt files under DIR/classify/): each tried too."),
    prompt_dir: Optional[Path] = typer.Option(None, "--prompt-dir", help="Prompt folder to write the winner "
                                              "in (DIR/classify/NAME.vK.jinja; default OUT/prompts)."),
    metric: str = typer.Option("macro_f1", "--metric", help="Metric the search maximises."),
    max_tokens: int = MAX_TOKENS, seed: int = SEED,
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples of the val check."),
    llm: Optional[LLMOptions] = None,
) -> None:
    """Search exemplar sets for BASE on train folds within --budget requests; confirm the winner once on val.

    Train posts the base labels correctly are the exemplar pool; each candidate (a fixed
    exemplar set, stratified by level) is scored by its mean metric over the train folds.
    The best is compared with the base on val (paired bootstrap) and written as a new
    prompt version. Test data is never read. Rerun the same command to resume.
    Example: llm-aug prompts optimize classify/fewshot --task fine --train train.tsv --val val.tsv --budget 2000 --backend llamacpp --model test

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.optimize_prompt import format_report, optimize_prompt
    from llm_aug.prompting.classify import ClassifyConfig

    assert llm is not None  # supplied by with_llm_options
    result = optimize_prompt(base, task, train, val, llm=llm.config(out / "llm-cache.sqlite"), budget=budget,
                             out=out, folds=folds, candidates=candidates, shots=shots, seed=seed,
                             variants=variants, prompt_dir=prompt_dir, metric=metric,
                             config=ClassifyConfig(max_tokens=max_tokens, seed=seed), n_boot=n_boot,
                             batch=llm.batch_mode)
    typer.echo(format_report(result))


def register(app: typer.Typer) -> None:
    """Add ``optimize`` to the ``prompts`` group."""
    app.command("optimize")(optimize)
