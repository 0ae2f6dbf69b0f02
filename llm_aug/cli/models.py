"""``train``, ``predict``, ``evaluate`` and ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperCommand

from llm_aug.cli.common import (
    COMMON_EXIT_CODES,
    FORMAT,
    ID_COL,
    LABEL_COL,
    OUTPUT_FORMAT,
    TASK,
    TEXT_COL,
    exit_codes,
    load_kwargs,
)
from llm_aug.core.errors import UserError

DRY_RUN_HELP = ("Print the plan and stop: rows, hyper-parameter candidates, posts to embed and how long "
                "that should take (a few probe posts are timed); nothing is fitted or written.")
#: Stand-in for ``train --method``'s help; the help screen shows :func:`method_help` instead.
METHOD_HELP = "Classification method, from the method registry (default: the task's default method)."


def method_help() -> str:
    """``--method`` help generated from the method registry: every method and the default."""
    from llm_aug.classifiers.registry import DEFAULT_METHOD, METHODS  # seconds to import: help only

    defaults = set(DEFAULT_METHOD.values())
    default = (next(iter(defaults)) if len(defaults) == 1
               else ", ".join(f"{m} ({task})" for task, m in DEFAULT_METHOD.items()))
    return f"One of: {', '.join(METHODS)}. Default: {default}."


class TrainCommand(TyperCommand):
    """``train``: fills in ``--method``'s help from the registry when the help is shown.

    Importing the registry pulls in scikit-learn, so it happens only for ``--help``,
    not on every start of the CLI.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if param.name == "method":
                param.help = method_help()
        super().format_help(ctx, formatter)


@exit_codes(COMMON_EXIT_CODES)
def train(
    task: str = TASK,
    train_file: Path = typer.Option(..., "--train", help="Training file (SOS-1K TSV or mapped columns)."),
    val_file: Path = typer.Option(..., "--val", help="Validation file: hyper-parameters are chosen on it."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
    method: Optional[str] = typer.Option(None, "--method", "-m", help=METHOD_HELP),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds: one model per seed in OUT/seed-N, mean ± std reported."),
    model_path: Optional[str] = typer.Option(None, "--model-path", help="bert: local model directory or hub id (e.g. hfl/chinese-bert-wwm-ext)."),
    set_params: list[str] = typer.Option([], "--set", help="Fix an estimator parameter, KEY=VALUE (JSON value), repeatable; e.g. --set epochs=3."),
    calibrate: str = typer.Option("none", "--calibrate", help="Recalibrate the probabilities after selection: none, sigmoid, isotonic or temperature."),
    calibrate_on: str = typer.Option("cv", "--calibrate-on", help="Where the calibration map is fitted: cv (out-of-fold train, val untouched) or val."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    text_col: str = TEXT_COL, label_col: str = LABEL_COL, id_col: Optional[str] = ID_COL,
    fmt: Optional[str] = FORMAT,
) -> None:
    """Train a classifier on TRAIN, select its hyper-parameters on VAL, save a model directory.

    Examples:
      llm-aug train --task fine --method tfidf-svm --train train.tsv --val val.tsv --out runs/svm
      llm-aug train --task fine --method stack --train big.tsv --val val.tsv --out runs/stack --dry-run
      llm-aug train --task fine --method bert --model-path hfl/chinese-bert-wwm-ext --set device=\"cuda\" --set precision=\"bf16\" --seeds 1,2,3 --train train.tsv --val val.tsv --out runs/bert

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.train import train_model, train_seeds

    params = parse_params(set_params)
    if model_path:
        params["model_name_or_path"] = model_path
    kwargs = load_kwargs(text_col, label_col, id_col, fmt)
    if dry_run:
        from llm_aug.jobs.train_plan import format_plan, plan_training

        typer.echo(format_plan(plan_training(task, train_file, val_file, out, method=method, seed=seed,
                                             load_kwargs=kwargs, params=params)))
        return
    if seeds:
        summary = train_seeds(task, train_file, val_file, out, seeds=parse_seeds(seeds), method=method,
                              load_kwargs=kwargs, params=params)
        typer.echo(f"val weighted F1 {summary.mean:.4f} ± {summary.std:.4f} over seeds {summary.seeds} -> {out}")
        return
    res = train_model(task, train_file, val_file, out, method=method, seed=seed, load_kwargs=kwargs, params=params,
                      calibrate=calibrate, calibrate_on=calibrate_on)
    typer.echo(f"{res.method} {json.dumps(res.params, default=str)}: val weighted F1 {res.val_weighted_f1:.4f} -> {res.out_dir}")


def parse_params(items: list[str]) -> dict:
    """``KEY=VALUE`` strings to a dict; values are JSON when they parse, else strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` with a clear error otherwise."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds:
        raise UserError("--seeds is empty")
    return seeds


@exit_codes(COMMON_EXIT_CODES)
def predict(
    model_dir: Path = typer.Argument(..., help="Directory written by `llm-aug train`."),
    input_file: Path = typer.Option(..., "--input", "-i", help="Posts to classify (labels optional)."),
    output: Path = typer.Option(..., "--output", "-o", help="Predictions file to write: JSONL, or Parquet (.parquet)."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Screening profile directory (default: the model directory's screening.json, if any): adds p_high, levels and alerts."),
    triage: Optional[Path] = typer.Option(None, "--triage", help="Also write the review queue (CSV) under the profile: see `llm-aug triage`."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    text_col: str = TEXT_COL, label_col: str = LABEL_COL, id_col: Optional[str] = ID_COL,
    fmt: Optional[str] = FORMAT, output_format: Optional[str] = OUTPUT_FORMAT,
) -> None:
    """Write one JSON object per input row (id, text, pred, proba) in input order.

    --format is the input's format; the predictions are JSONL, or Parquet when --output
    ends .parquet (--output-format parquet says so explicitly).

    Under a screening profile (`llm-aug calibrate-threshold`) rows also carry p_high (the
    calibrated high-risk probability), levels (the conformal level set) and alerts.

    Example: llm-aug predict runs/svm --input val.tsv --output runs/svm/val.jsonl

    Exit codes:
      {exit_codes}
    """
    kwargs = load_kwargs(text_col, label_col, id_col, fmt)
    if dry_run:
        from llm_aug.jobs.train_plan import format_plan, plan_prediction

        typer.echo(format_plan(plan_prediction(model_dir, input_file, output, load_kwargs=kwargs)))
        return
    from llm_aug.jobs.train import predict_file

    result = predict_file(model_dir, input_file, output, load_kwargs=kwargs, profile=profile, triage=triage,
                          output_format=output_format)
    typer.echo(f"wrote {result.output}" + (f" and the review queue {triage}" if triage is not None else ""))


@exit_codes(COMMON_EXIT_CODES)
def evaluate(
    predictions: Path = typer.Argument(..., help="Predictions JSONL or Parquet (from predict or classify)."),
    gold: Path = typer.Option(..., "--gold", "-g", help="Gold-labelled file with the same rows."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="fine or binary (default: from the gold labels)."),
    binary_gold: Optional[Path] = typer.Option(None, "--binary-gold", help="Binary gold to score 11-level predictions collapsed at --threshold."),
    threshold: Optional[int] = typer.Option(None, "--threshold", help="Level at or above which a post counts as high risk (default 6)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where results.json and confusion.png go (default: beside the predictions)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the 95% CIs."),
    text_col: str = TEXT_COL, label_col: str = LABEL_COL, id_col: Optional[str] = ID_COL,
    fmt: Optional[str] = FORMAT,
) -> None:
    """Score predictions against gold labels, with bootstrap 95% CIs.

    Example: llm-aug evaluate runs/svm/val.jsonl --gold val.tsv --json

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.evaluate import evaluate_predictions

    results = evaluate_predictions(predictions, gold, task=task, binary_gold=binary_gold, threshold=threshold,
                               out_dir=out, n_boot=n_boot, load_kwargs=load_kwargs(text_col, label_col, id_col, fmt))
    if as_json:
        typer.echo(json.dumps(results.to_json(), ensure_ascii=False))
        return
    from llm_aug.jobs.evaluate import format_results, results_dir

    typer.echo(format_results(results, results_dir(predictions, out)))


@exit_codes(COMMON_EXIT_CODES)
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories, each holding a results.json."),
    out: Path = typer.Option(Path("comparison"), "--out", "-o", help="Directory for comparison.md/.html."),
    metric: str = typer.Option("weighted_f1", "--metric", help="Metric for the bar chart and the paired tests."),
    split: Optional[str] = typer.Option(None, "--split", help="Name of the data the runs were scored on, for the titles (default: from results.json, else the gold file's name)."),
) -> None:
    """Compare runs in one table (Markdown) and one self-contained HTML page.

    Example: llm-aug compare runs/majority runs/svm --out runs/compare

    Exit codes:
      {exit_codes}
    """
    from llm_aug.eval.report import compare_runs

    report = compare_runs(list(runs), out, metric=metric, split=split)
    # The Markdown's image link only makes sense inside comparison.md.
    typer.echo("\n".join(line for line in report["markdown"].rstrip("\n").splitlines()
                         if not line.startswith("![")).rstrip("\n"))
    typer.echo(f"wrote {Path(out) / 'comparison.md'}" + (f" and {report['html']}" if report.get("html") else ""))


@exit_codes(COMMON_EXIT_CODES)
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output directory."),
    data: Optional[Path] = typer.Option(None, "--data", help="Directory with train/val/test.tsv (default: examples/demo)."),
    task: str = typer.Option("fine", "--task", "-t", help="fine or binary."),
) -> None:
    """Run the whole pipeline offline on the demo corpus: data -> baselines -> evaluation -> report.

    Example: llm-aug demo --out runs/demo

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.demo import demo_trailer, format_demo, run_demo

    result = run_demo(out, data, task)
    typer.echo(format_demo(result))
    typer.echo(demo_trailer(result, out))


@exit_codes(COMMON_EXIT_CODES)
def select(
    task: str = TASK,
    train_file: Path = typer.Option(..., "--train", help="Training file."),
    val_file: Path = typer.Option(..., "--val", help="Validation file (hyper-parameters are chosen on it)."),
    methods: str = typer.Option("majority,tfidf-lr,tfidf-svm,e5-lr,stack", "--methods", help="Comma-separated methods to rank."),
    out: Path = typer.Option(Path("runs/select"), "--out", "-o", help="Where selection.json goes."),
    folds: int = typer.Option(5, "--folds", help="Stratified folds."),
    repeats: int = typer.Option(3, "--repeats", help="Repeats of the k-fold split."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Rank methods by repeated stratified k-fold CV over train+val (never test).

    Example: llm-aug select --task fine --train train.tsv --val val.tsv --methods tfidf-svm,stack

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.select import select_by_cv

    result = select_by_cv(task, train_file, val_file, [m.strip() for m in methods.split(",") if m.strip()],
                          out, folds=folds, repeats=repeats, seed=seed)
    for row in result.ranking:
        typer.echo(f"{row.method:<12} CV weighted F1 {row.cv_mean:.4f} ± {row.cv_std:.4f}  {json.dumps(row.params)}")
    typer.echo(f"best: {result.best}")


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command(cls=TrainCommand)(train)
    for fn in (predict, evaluate, compare, demo, select):
        app.command()(fn)
