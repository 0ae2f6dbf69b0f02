"""What ``llm-aug augment`` writes besides the corpus: report, manifest, usage totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llm_aug.augment.corpus import CorpusFiles
from llm_aug.augment.heldout import copy_lines
from llm_aug.augment.plan import nothing_to_add
from llm_aug.augment.summary import diversity, report_data, sample_rows
from llm_aug.core.files import atomic_write_text
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import Dataset
from llm_aug.eval.render import render
from llm_aug.jobs.augment_types import AugmentConfig, AugmentResult
from llm_aug.llm.types import RunSummary

if TYPE_CHECKING:
    from llm_aug.augment import generate as G


# What the job writes into its output directory (no input may be one of these).
WRITES = ("corpus.tsv", "corpus.parquet", "corpus.jsonl", "rejected.jsonl", "plan.md", "plan.json", "report.md",
          "report.html", "manifest.json")


def check_outputs_of(cfg: AugmentConfig) -> None:
    """Refuse an output directory, or a request cache, the run could not use (before anything runs)."""
    check_outputs(out_dir=cfg.out, inputs=(cfg.train, *cfg.protect), writes=WRITES,
                  cache=cfg.llm.runner.cache_path if cfg.llm is not None else None)


def usage_totals(summaries: list[RunSummary]) -> dict[str, Any]:
    """Token and request totals over every runner call of the run."""
    total: dict[str, Any] = Counter()
    errors: Counter[str] = Counter()
    cost = None
    for s in summaries:
        m = s.to_manifest()
        for key in ("n_items", "n_ok", "n_failed", "n_resumed", "n_cached", "requests_made", "retries",
                    "prompt_tokens", "completion_tokens"):
            total[key] += m[key]
        errors.update(m["errors"])
        cost = cost if m["cost_usd"] is None else (cost or 0.0) + m["cost_usd"]
    backend = {"backend": summaries[0].backend, "model": summaries[0].model} if summaries else {}
    return {**backend, **dict(total), "cost_usd": cost, "errors": dict(errors), "runs": len(summaries)}


def shortfall_lines(result: AugmentResult) -> list[str]:
    """One line per level that stayed short of its target (empty when none did)."""
    return [f"level {lv}: {result.after[lv] - result.before[lv]} of {result.targets[lv] - result.before[lv]} "
            f"posts accepted, {n} short (target {result.targets[lv]})" for lv, n in result.shortfall.items()]


def write_report(cfg: AugmentConfig, result: AugmentResult, train: Dataset,
                 accepted: Mapping[int, Sequence[tuple[str, str, str]]],
                 links: Sequence[tuple[str, str]] = ()) -> None:
    """report.md and report.html: status (shortfall, rounds), counts, rejections, diversity, samples.

    ``accepted``: per level, the accepted posts' (text, method, source id) in corpus order;
    each sample is shown beside its source post. ``links``: (text, href) to related pages.
    """
    by_level = {lv: [row[0] for row in rows] for lv, rows in accepted.items() if rows}
    note = nothing_to_add(result.plan)
    status = {"short": shortfall_lines(result), "rounds": result.rounds, "n_candidates": result.n_candidates,
              "protected": copy_lines(result.protected_copies), "notes": [note] if note else []}
    samples = sample_rows(accepted, 3, cfg.seed)
    wanted = {i for r in samples for i in r.source_ids}
    sources = {r.id: r.text for r in train.rows if r.id in wanted}
    data = report_data(result.before, result.after, result.rejections,
                       diversity(by_level, reference=train.texts, seed=cfg.seed), samples,
                       title=f"Augmentation report: {cfg.method}, balance {cfg.balance}", status=status,
                       sources=sources, links=links)
    atomic_write_text(cfg.out / "report.md", render("augment.md.jinja", **data))
    atomic_write_text(cfg.out / "report.html", render("augment.html.jinja", **data))


def write_augment_manifest(cfg: AugmentConfig, result: AugmentResult, files: CorpusFiles,
                           source: "G.Source") -> None:
    """manifest.json: inputs, prompt, usage, plan and result counts (never secrets)."""
    prompt = getattr(source, "prompt", None)
    ref = getattr(source, "ref", None)
    extra = {"prompt": ({"name": prompt.name, "version": prompt.version, "sha256": prompt.sha256} if prompt
                        else ref.model_dump() if ref else None),
             "usage": result.usage, "plan": result.plan.model_dump(mode="json"),
             "result": result.model_dump(mode="json", include={"before", "after", "targets", "shortfall",
                                                                "rounds", "n_candidates", "rejections",
                                                                "protected_copies", "round_stats"}),
             "outputs": {k: str(v) for k, v in files._asdict().items()}}
    write_manifest(cfg.out, "augment", data_files=[cfg.train, *cfg.protect], seed=cfg.seed,
                   config=cfg.model_dump(mode="json"), extra=extra)
