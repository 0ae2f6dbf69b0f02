"""``calibrate-threshold`` and ``triage``: risk screening on any classifier's probabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from llm_aug.cli.common import COMMON_EXIT_CODES, exit_codes
from llm_aug.core.errors import UserError

TARGET = typer.Option(None, "--target", help="Recall target for high-risk posts, repeatable (default: recall=0.9, 0.95, 0.99).")
DELTA = typer.Option(0.1, "--delta", help="The guarantee holds with probability >= 1 - delta.")
COVERAGE = typer.Option(0.9, "--coverage", help="Conformal level sets cover the true level with this probability.")
CALIBRATE = typer.Option("none", "--calibrate", help="Recalibrate the probabilities first: none, sigmoid, isotonic or temperature (cross-fitted on the calibration rows).")
LEVEL = typer.Option(6, "--level", help="Levels at or above this count as high risk (11-level task).")
CODES = COMMON_EXIT_CODES


def _calibration_inputs(run: Path, gold: Optional[Path]) -> tuple[Path, Path, str | None]:
    """(predictions, gold, task) from a model directory (its val.jsonl) or a predictions file."""
    if run.is_dir():
        from llm_aug.classifiers.store import CONFIG_FILE
        from llm_aug.jobs.train import VAL_PREDICTIONS_FILE

        preds = run / VAL_PREDICTIONS_FILE
        if not preds.is_file():
            raise UserError(f"{run}: no {VAL_PREDICTIONS_FILE}; give a model directory from `llm-aug train` "
                            "or a predictions file")
        task = json.loads((run / CONFIG_FILE).read_text(encoding="utf-8")).get("task")
        return preds, gold or _val_from_manifest(run), task
    if gold is None:
        raise UserError("--gold is needed with a predictions file (the calibration split's labels)")
    return run, gold, None


def _val_from_manifest(run: Path) -> Path:
    """The validation file a model was trained with, when it is still where it was (same bytes)."""
    from llm_aug.core.files import MANIFEST_FILE, file_sha256

    try:
        files = json.loads((run / MANIFEST_FILE).read_text(encoding="utf-8"))["data_files"]
        path, digest = list(files.items())[1]
    except (OSError, KeyError, IndexError, ValueError):
        raise UserError(f"{run}: its manifest does not name the validation file; give --gold VAL") from None
    if not Path(path).is_file() or file_sha256(path) != digest:
        raise UserError(f"{run}: the validation file it was trained with ({path}) is gone or changed; "
                        "give --gold VAL")
    return Path(path)


@exit_codes(CODES)
def calibrate_threshold(
    run: Path = typer.Argument(..., help="Model directory from `llm-aug train` (uses its val.jsonl), or a predictions JSONL with proba."),
    gold: Optional[Path] = typer.Option(None, "--gold", "-g", help="Labels of the calibration rows (default for a model directory: its validation file)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="fine or binary (default: the model's task; required for a predictions file)."),
    target: Optional[List[str]] = TARGET, delta: float = DELTA, coverage: float = COVERAGE,
    calibrate: str = CALIBRATE, level: int = LEVEL,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Profile directory (default: the model directory, or beside the predictions)."),
    seed: int = typer.Option(0, "--seed", help="Cross-fitting folds' seed."),
    eval_predictions: Optional[Path] = typer.Option(None, "--eval", help="Predictions of an evaluation split to report the operating points on (with --eval-gold)."),
    eval_gold: Optional[Path] = typer.Option(None, "--eval-gold", help="Labels of the --eval split."),
) -> None:
    """Pick high-risk thresholds with a recall guarantee and fit conformal level sets.

    On the calibration split only (a model's validation predictions, never test): for each
    --target, the threshold whose high-risk recall is >= the target with probability
    >= 1 - delta (Learn-then-Test, MAPIE); and level sets covering the true level with
    probability --coverage. Writes screening.json for `predict` and `triage`.

    Example: llm-aug calibrate-threshold runs/stack --target recall=0.95 --delta 0.1

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.screening import calibrate_threshold as fit
    from llm_aug.jobs.screening import profile_table

    preds, gold_path, model_task = _calibration_inputs(run, gold)
    chosen = task or model_task
    if chosen is None:
        raise UserError("--task is needed with a predictions file (fine or binary)")
    out_dir = out or (run if run.is_dir() else run.with_name(run.stem + ".screening"))
    profile = fit(preds, gold_path, out_dir, task=chosen, targets=target or ("recall=0.9", "recall=0.95", "recall=0.99"),
                  delta=delta, coverage=coverage, calibrate=calibrate, level=level, seed=seed)
    typer.echo(profile_table(profile))
    typer.echo(f"wrote {out_dir / 'screening.json'}", err=True)
    if (eval_predictions is None) != (eval_gold is None):
        raise UserError("--eval and --eval-gold go together (predictions and labels of the evaluation split)")
    if eval_predictions is not None:
        from llm_aug.jobs.triage import evaluate_split

        typer.echo("\n" + format_operating_points(evaluate_split(out_dir, eval_predictions, eval_gold),
                                                   f"on {eval_predictions}"))


@exit_codes(CODES)
def triage(
    predictions: Path = typer.Argument(..., help="Predictions JSONL with proba (predict, or classify --samples N / --score-labels)."),
    profile: Path = typer.Option(..., "--profile", "-p", help="Directory holding screening.json (from calibrate-threshold)."),
    out: Path = typer.Option(..., "--out", "-o", help="Queue CSV to write (also .jsonl and .summary.json beside it)."),
    gold: Optional[Path] = typer.Option(None, "--gold", "-g", help="Labels, to report recall, precision, coverage on this split."),
    sets: str = typer.Option("ordinal", "--sets", help="Level sets shown: ordinal (a range such as 5-8), mondrian or marginal."),
) -> None:
    """Order posts for review: unscored first, then by high-risk probability; flag uncertain ones.

    Example: llm-aug triage runs/stack/new.jsonl --profile runs/stack --out runs/stack/queue.csv

    Exit codes:
      {exit_codes}
    """
    from llm_aug.jobs.triage import triage as run_triage

    result = run_triage(predictions, profile, out, gold=gold, set_kind=sets)
    typer.echo(format_triage(result))


def _op_lines(operating_points: list[dict]) -> list[str]:
    lines = ["| recall target | threshold | flagged | recall | precision | alerts / 1,000 | missed |",
             "|---|---|---|---|---|---|---|"]
    for op in operating_points:
        cells = [f"{op[k]:.3f}" if isinstance(op.get(k), float) else str(op.get(k, "-"))
                 for k in ("recall", "precision")]
        rate = op.get("alert_rate_per_1000")
        cells += [f"{rate:.0f}" if isinstance(rate, (int, float)) else "-", str(op.get("missed", "-"))]
        lines.append(f"| {op['target']:g} | {op['threshold']:.4f} | {op['flagged']} | " + " | ".join(cells) + " |")
    return lines


def format_operating_points(evaluation: dict, where: str) -> str:
    """The profile's operating points and sets measured on a labelled split."""
    cov, after = evaluation["coverage"], evaluation["calibration_after"]
    return "\n".join([f"{where}: {evaluation['n']} posts ({evaluation['unscored']} without probabilities)", "",
                      *_op_lines(evaluation["operating_points"]), "",
                      f"level sets: coverage {cov['coverage']:.3f}, mean size {cov['mean_size']:.2f}; "
                      f"ECE {evaluation['calibration_before']['ece']:.3f} -> {after['ece']:.3f} after calibration"])


def format_triage(result: object) -> str:
    """Counts above each operating point, and recall/precision/alert rate when labelled."""
    r = result  # a TriageResult
    lines = [f"{r.n} posts: {r.unscored} unscored (at the top), {r.uncertain} uncertain; queue in {r.queue}", "",
             *_op_lines(r.operating_points)]
    if r.evaluation is not None:
        cov = r.evaluation["coverage"]
        lines += ["", f"level sets: coverage {cov['coverage']:.3f}, mean size {cov['mean_size']:.2f}"]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("calibrate-threshold")(calibrate_threshold)
    app.command()(triage)
