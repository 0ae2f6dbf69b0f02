"""``augment``: a class-balanced augmented training corpus (LLM, synonym, EDA, back-translation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from llm_aug.cli.common import TASK, exit_codes
from llm_aug.cli.llm import LLM_EXIT_CODES
from llm_aug.cli.llm_options import LLMOptions, with_llm_options
from llm_aug.core.errors import UserError, did_you_mean
from llm_aug.core.exit_codes import ExitCode

if TYPE_CHECKING:
    from llm_aug.jobs.augment import AugmentResult

AUGMENT_METHODS = ("llm", "synonym", "eda", "backtranslate")
METHOD = typer.Option(..., "--method", help="llm, synonym, eda or backtranslate.")
BALANCE = typer.Option("max", "--balance", help="max (up to the largest level), N (every level up to N) or xR (R times, capped at the largest).")
PROTECT = typer.Option(None, "--protect", help="Held-out file (val, test) no synthetic post may resemble; repeatable.")
NO_PROTECT = typer.Option(False, "--no-protect", help="Run without a protect file (no leakage check).")
DROP_NEAR = typer.Option(False, "--drop-near-protected", help="Also drop training posts that are near-copies of a protected post (exact copies are always dropped). Off by default: near-copies are reported (stderr, report, manifest) and kept, since on SOS-1K most of them (26 of 799 fine train posts vs val) only share a stock phrase with a held-out post and dropping them would change the user's split; synthetic posts made from them are still leakage-filtered.")
RELABEL = typer.Option("none", "--relabel", help="Label-consistency filter: none, llm (same backend) or a trained model directory.")
SHOTS = typer.Option(3, "--shots", "-k", help="Exemplars of the level per generation request.")
PER_REQUEST = typer.Option(5, "--posts-per-request", "-m", help="Posts asked for per generation request.")
CAP = typer.Option(None, "--max-requests-per-level", help="Cap per level over all rounds (default 3x the plan); source posts for backtranslate, rewrites for synonym/eda.")
FILTERS = typer.Option(None, "--filters", help="YAML/JSON FilterConfig overriding the filter defaults.")
CORPUS_FORMAT = typer.Option("tsv", "--format", help="tsv (OUT/corpus.tsv) or parquet (OUT/corpus.parquet, same columns, typed); corpus.jsonl either way.")


@with_llm_options
@exit_codes({
    **LLM_EXIT_CODES, ExitCode.OK: "corpus balanced, every LLM request answered", ExitCode.LEVEL_SHORT: None,
    ExitCode.ROWS_FAILED: ('corpus balanced, but some LLM requests failed: their "error" field in '
                           'OUT/raw/*.jsonl says why'),
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); answered requests are kept, rerun the same command to resume"})
def augment(
    method: str = METHOD, task: str = TASK,
    train: Path = typer.Option(..., "--train", help="Training file: the only source of exemplars and rewrites."),
    balance: str = BALANCE, protect: Optional[List[Path]] = PROTECT, no_protect: bool = NO_PROTECT,
    drop_near_protected: bool = DROP_NEAR,
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    prompt: str = typer.Option("generate/level_json.v2", "--prompt", "-p", help="Generation prompt."),
    shots: int = SHOTS, posts_per_request: int = PER_REQUEST, max_requests_per_level: Optional[int] = CAP,
    overgenerate: float = typer.Option(1.5, "--overgenerate", help="Ask for this many times the posts needed."),
    temperature: float = typer.Option(0.9, "--temperature", help="Sampling temperature of generation."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Reply length limit (default from post length)."),
    relabel: str = RELABEL,
    tolerance: Optional[int] = typer.Option(None, "--tolerance", help="Allowed |relabelled - target| (default 1 fine, 0 binary)."),
    filters: Optional[Path] = FILTERS,
    seed: int = typer.Option(0, "--seed", help="Exemplar, sampling and rewrite seed."),
    corpus_format: str = CORPUS_FORMAT,
    dry_run: bool = typer.Option(False, "--dry-run", help="Write and print the plan (and the first round's estimate); call nothing."),
    llm: Optional[LLMOptions] = None,
) -> None:
    """Generate a class-balanced augmented corpus; exit 3 if a level cannot be filled.

    Writes OUT/plan.md, plan.json, corpus.tsv (SOS-1K format; corpus.parquet with --format
    parquet), corpus.jsonl (provenance), rejected.jsonl, report.md, report.html and manifest.json. A killed run resumes when
    rerun with the same arguments.

    Exit codes (3 outranks 4: when a level falls short and requests failed too, 3):
      {exit_codes}

    Examples:
      llm-aug augment --method llm --task fine --train train.tsv --protect val.tsv --balance max --out runs/aug --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen2.5-7B-Instruct
      llm-aug augment --method eda --task fine --train train.tsv --protect val.tsv --balance x2 --out runs/eda
    """
    from llm_aug.jobs.augment import AugmentConfig, run_augment

    if method not in AUGMENT_METHODS:
        raise UserError(f"unknown method {method!r}{did_you_mean(method, AUGMENT_METHODS)}; "
                        f"use one of: {', '.join(AUGMENT_METHODS)}")
    needs_llm = method in ("llm", "backtranslate") or relabel == "llm"
    assert llm is not None  # supplied by with_llm_options
    llm_cfg = llm.config(out / "llm-cache.sqlite") if needs_llm else None
    cfg = AugmentConfig(
        method=method, task=task, train=train, out=out, balance=balance, protect=protect or [],
        no_protect=no_protect, drop_near_protected=drop_near_protected, prompt=prompt, shots=shots,
        posts_per_request=posts_per_request,
        max_requests_per_level=max_requests_per_level, overgenerate=overgenerate, temperature=temperature,
        max_tokens=max_tokens, relabel=relabel, tolerance=tolerance, seed=seed,
        filters=_filters(filters), llm=llm_cfg, dry_run=dry_run, corpus_format=_corpus_format(corpus_format))
    result = run_augment(cfg, on_plan=typer.echo, batch=llm.batch_mode if needs_llm else None)
    show_augment(result, dry_run=dry_run)


def show_augment(result: AugmentResult, *, dry_run: bool) -> None:
    """The dry run's estimate, or what was added (also what ``batch collect`` prints for an augment run)."""
    if result.dry_run is not None:
        typer.echo("First round (dry run):\n" + json.dumps(result.dry_run.model_dump(mode="json"), indent=2))
    if not dry_run:
        _finish(result, result.out)


def _finish(result: AugmentResult, out: Path) -> None:
    """Say what was added; exit 3 when a level fell short, else 4 when LLM requests failed."""
    from llm_aug.jobs.augment_outputs import shortfall_lines

    typer.echo(f"{sum(result.after.values()) - sum(result.before.values())} synthetic posts added in "
               f"{result.rounds} round(s); corpus in {out / result.corpus_file}, report in {out / 'report.md'}")
    if result.round_stats:
        rates = ", ".join(f"round {s.round} {s.candidates_per_s:,.0f}"
                          for s in {s.round: s for s in (result.round_stats[0], result.round_stats[-1])}.values())
        typer.echo(f"{result.n_candidates:,} candidates; candidates/s: {rates} "
                   f"(per round: manifest.json result.round_stats)")
    n_failed = int(result.usage.get("n_failed", 0))
    if n_failed:
        typer.echo(f"{result.usage.get('n_ok', 0)} ok, {n_failed} failed LLM requests: "
                   f"see {out / 'raw'}/*.jsonl (error field)", err=True)
    lines = shortfall_lines(result)
    if lines:
        typer.echo("error: not balanced (nothing was padded):\n  " + "\n  ".join(lines), err=True)
        raise typer.Exit(result.exit_code)  # 3 outranks 4: the corpus itself falls short
    if n_failed:
        raise typer.Exit(ExitCode.ROWS_FAILED)


def _corpus_format(fmt: str) -> str:
    if fmt not in ("tsv", "parquet"):
        raise UserError(f"--format {fmt!r}: use tsv or parquet")
    return fmt


def _filters(path: Optional[Path]) -> object:
    if path is None:
        return None
    import yaml

    from llm_aug.augment.filters import FilterConfig

    try:
        return FilterConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise UserError(f"{path}: not a valid filter config ({exc})") from None


def register(app: typer.Typer) -> None:
    """Attach this command to the root app."""
    app.command()(augment)
