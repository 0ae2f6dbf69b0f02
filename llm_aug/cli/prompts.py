"""``prompts list|show|render|compare|history``."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

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
    from llm_aug.jobs.compare_matrix import MatrixReport
    from llm_aug.jobs.compare_prompts import CompareReport
    from llm_aug.llm import LLMConfig
    from llm_aug.prompting.classify import ClassifyConfig

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


SHOTS_LIST = typer.Option("0", "--shots", "-k", help="Few-shot exemplars per post (0 = zero-shot); a list (0,3) makes one matrix column per value.")
STRATEGY_LIST = typer.Option("similar", "--shot-strategy", help="random, similar or diverse; a list (random,similar) for the matrix.")


@app.command()
@with_llm_options(repeat_model=True)
@exit_codes({**LLM_EXIT_CODES, ExitCode.OK: "every post answered under every prompt (and the gate passed)",
             ExitCode.ROWS_FAILED: 'report written, but some posts failed: their "error" field in '
                                   'OUT/<cell>/predictions.jsonl says why',
             ExitCode.REGRESSION: None})
def compare(
    prompts: List[str] = typer.Argument(..., help="Prompts (names such as classify/scene.v1, or .jinja files); the first is the baseline unless --baseline."),
    task: str = TASK,
    input_file: Path = typer.Option(..., "--input", "-i", help="Posts to classify."),
    gold: Optional[Path] = typer.Option(None, "--gold", "-g", help="Gold labels (default: the input's labels)."),
    out: Path = typer.Option(Path("runs/prompt-compare"), "--out", "-o", help="Output directory."),
    shots: str = SHOTS_LIST, shot_strategy: str = STRATEGY_LIST, train: Optional[Path] = TRAIN,
    samples: int = SAMPLES, temperature: Optional[float] = TEMPERATURE, max_tokens: int = MAX_TOKENS,
    seed: int = SEED,
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
    html: bool = typer.Option(False, "--html", help="Also write comparison.html (matrix.html for a matrix)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline cell: prompt@model@shots or prompt@model@shots/strategy, a prompt name, or an index (default 0, the first cell)."),
    fail_if_worse: Optional[str] = typer.Option(None, "--fail-if-worse", help="METRIC[:MARGIN], e.g. weighted_f1:0.01: exit 5 when a cell is significantly worse than the baseline by more than MARGIN."),
    as_json: bool = typer.Option(False, "--json", help="Print the matrix (and the gate's verdict) as one JSON object instead of the table."),
    history: Optional[Path] = typer.Option(None, "--history", help="Prompt history JSONL to append one record per cell to (default: prompt-history.jsonl beside OUT, i.e. runs/prompt-history.jsonl)."),
    eval_split: Optional[str] = typer.Option(None, "--eval-split", help="What the input is: val or test, recorded in the history (default 'given file'; only 'test' marks test scores)."),
    llm: Optional[LLMOptions] = None,
) -> None:
    """Compare prompts (x models x shot settings) on the same posts, with paired bootstrap CIs.

    Two prompts and nothing else: the A/B (B - A; OUT/flips.jsonl, prompt_compare.json).
    More prompts, several --model, a --shots/--shot-strategy list, --baseline, --fail-if-worse
    or --json: the matrix (OUT/<cell>/, matrix.json, matrix.md; each cell against the baseline,
    Holm-corrected). Every run appends its cells to the prompt history (see prompts history).
    Example: llm-aug prompts compare classify/scene.v1 classify/scene_levels.v1 --task fine --input val.tsv --backend llamacpp --model test

    Exit codes:
      {exit_codes}
    """
    from llm_aug.prompting.classify import ClassifyConfig

    assert llm is not None  # supplied by with_llm_options
    shot_list, strategies = _int_list(shots, "--shots"), _str_list(shot_strategy)
    if eval_split not in (None, "val", "test"):
        raise UserError(f"--eval-split {eval_split}: use val or test")
    cfg = ClassifyConfig(shots=shot_list[0], shot_strategy=strategies[0], samples=samples,
                         temperature=temperature, max_tokens=max_tokens, seed=seed)
    llm_cfg, models = _llm_and_models(llm, out / "llm-cache.sqlite")
    history = history or out.parent / "prompt-history.jsonl"
    command = shlex.join(["llm-aug", *sys.argv[1:]])
    matrix = (len(prompts) != 2 or len(models) > 1 or len(shot_list) > 1 or len(strategies) > 1
              or baseline is not None or fail_if_worse is not None or as_json)
    if not matrix:
        from llm_aug.jobs.compare_prompts import compare_prompts

        report = compare_prompts(prompts[0], prompts[1], task, input_file, llm=llm_cfg, out=out, gold=gold,
                                 config=cfg, train=train, n_boot=n_boot, html=html, batch=llm.batch_mode)
        _ab_history(report, history, gold or input_file, eval_split, command, llm_cfg, cfg)
        show_compare(report)
        return
    from llm_aug.jobs.compare_matrix import compare_matrix

    result = compare_matrix(prompts, task, input_file, llm=llm_cfg, models=models or None, shots=shot_list,
                            shot_strategies=strategies, out=out, gold=gold, config=cfg, train=train,
                            n_boot=n_boot, html=html, baseline=baseline, fail_if_worse=fail_if_worse,
                            history=history, eval_split=eval_split, command=command, batch=llm.batch_mode)
    show_matrix(result, as_json=as_json)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in _str_list(text)]
    except ValueError:
        raise UserError(f"{flag} {text}: give whole numbers, e.g. 0,3") from None
    if any(v < 0 for v in values):
        raise UserError(f"{flag} {text}: shots must be >= 0")
    return values


def _str_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise UserError(f"empty list: {text!r}")
    return list(dict.fromkeys(values))


def _llm_and_models(llm: LLMOptions, cache: Path) -> tuple[LLMConfig, list[str]]:
    """The LLM config and the models to compare: every --model, or ``models:`` in --llm-config."""
    if llm.llm_config_file is not None:
        import yaml

        from llm_aug.llm import load_llm_config

        try:
            raw = yaml.safe_load(llm.llm_config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{llm.llm_config_file}: cannot read LLM config ({exc})") from None
        if isinstance(raw, dict) and "models" in raw:
            models = raw.pop("models")
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models) or not models:
                raise UserError(f"{llm.llm_config_file}: models: must be a list of model names")
            raw.setdefault("runner", {}).setdefault("cache_path", str(llm.cache or cache))
            return load_llm_config(raw), list(dict.fromkeys(models))
    models = list(dict.fromkeys(llm.models or []))
    return llm.config(cache), models if len(models) > 1 else []


def _ab_history(report: CompareReport, history: Path, data: Path, eval_split: str | None, command: str,
                llm_cfg: LLMConfig, cfg: ClassifyConfig) -> None:
    """The A/B's two prompts as history records (read back from each prompt's results.json)."""
    from llm_aug.jobs.prompt_history import ab_records, append_records

    model = getattr(llm_cfg.backend, "model", llm_cfg.backend.kind)
    append_records(history, ab_records(report, data, eval_split, command, model=model, shots=cfg.shots,
                                       shot_strategy=cfg.shot_strategy))


def show_matrix(report: MatrixReport, *, as_json: bool = False) -> None:
    """The matrix table (or its JSON); exit 5 when the gate failed, else 4 when rows failed."""
    from llm_aug.jobs.compare_matrix import format_matrix

    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else format_matrix(report))
    if report.gate is not None and not report.gate.passed:
        typer.echo(f"regression: {', '.join(report.gate.worse)} worse than {report.baseline} on "
                   f"{report.gate.metric} (margin {report.gate.margin})", err=True)
        raise typer.Exit(int(ExitCode.REGRESSION))
    failed = [c for c in report.cells if c.failed]
    exit_if_rows_failed(sum(c.ok for c in report.cells), sum(c.failed for c in report.cells),
                        ", ".join(str(c.predictions) for c in failed))


def show_compare(report: CompareReport) -> None:
    """The comparison table; exit 4 when rows failed (also what ``batch collect`` prints for a compare run)."""
    from llm_aug.jobs.compare_prompts import format_report

    typer.echo(format_report(report))
    failed, ok, predictions = report.failed, report.ok, report.predictions
    where = ", ".join(str(path) for path, n in ((predictions.a, failed.a), (predictions.b, failed.b)) if n)
    exit_if_rows_failed(ok.a + ok.b, failed.a + failed.b, where)


@app.command("history")
@exit_codes(COMMON_EXIT_CODES)
def history_cmd(
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="Only this prompt (every version of its name)."),
    history: Path = typer.Option(Path("runs/prompt-history.jsonl"), "--history", help="The prompt history file."),
    metric: str = typer.Option("weighted_f1", "--metric", help="Rank by this metric."),
) -> None:
    """The prompt leaderboard (best first) and each prompt's change since its previous version.

    One row per prompt, model, shots and data file (its latest run); test scores only where
    the run said --eval-split test (the split column).
    Example: llm-aug prompts history --prompt classify/scene

    Exit codes:
      {exit_codes}
    """
    from llm_aug.eval.metrics import METRICS
    from llm_aug.jobs.prompt_history import format_history, leaderboard, read_history, version_changes

    if metric not in METRICS:
        raise UserError(f"--metric {metric}: use one of {', '.join(METRICS)}")
    rows = leaderboard(read_history(history), metric, prompt)
    if not rows:
        raise UserError(f"{history}: no records" + (f" for {prompt}" if prompt else ""))
    typer.echo(format_history(rows, version_changes(rows, metric), metric))
