"""Python API of ``llm-aug augment``: plan, rounds of candidates, filters, a balanced corpus.

``run_augment(config)`` plans how many posts each level needs (``plan.md`` and
``plan.json`` are written before anything is spent), then runs rounds: ask the source
(:mod:`llm_aug.augment.generate`) for candidates for every level still short, filter
the new round's candidates once, in batches, against everything before them (filters are
order-stable: a row's verdict never depends on later rows, so this is the same as
filtering all candidates at once), and repeat until every level reaches its target or its
request cap. Each level takes exactly its target, first kept in request order; decided
rows are streamed to disk, not held. A level that cannot be filled is reported, never
padded: ``AugmentResult.exit_code`` is then :data:`EXIT_SHORT` (3). Per-round figures
(candidates, accepted, seconds, candidates/s) land in ``result.round_stats``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from llm_aug.augment import generate as G
from llm_aug.augment.corpus import CorpusWriter
from llm_aug.augment.filters import (
    FilterConfig,
    Filters,
    LabelConfig,
    NearDupConfig,
    Relabel,
    rejection_counts_of,
)
from llm_aug.augment.heldout import copy_lines, find_copies, without_copies
from llm_aug.augment.plan import Plan, build_plan, estimate_tokens_per_post, nothing_to_add
from llm_aug.augment.relabel import LLMRelabeller, model_relabeller
from llm_aug.augment.rounds import RoundLoop
from llm_aug.augment.traditional import Augmenter
from llm_aug.core.errors import UserError
from llm_aug.core.files import DiskFull, atomic_write, disk_full_message, is_disk_full
from llm_aug.core.lock import locks_output
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import LabelScheme, scheme_for_task
from llm_aug.jobs.augment_outputs import check_outputs_of, usage_totals, write_augment_manifest, write_report
from llm_aug.jobs.augment_types import EXIT_SHORT, AugmentConfig, AugmentResult
from llm_aug.llm import build_runner
from llm_aug.llm.batch import BatchMode, JobCall
from llm_aug.llm.runner import Runner, RunSummary
from llm_aug.prompting import load_prompt

log = logging.getLogger(__name__)

# EXIT_SHORT and the types live in augment_types (augment_outputs reads them too); this
# module stays where callers import them from.
__all__ = ["EXIT_SHORT", "AugmentConfig", "AugmentResult", "default_filters", "run_augment"]


def default_filters(method: str) -> FilterConfig:
    """Rule-based rewrites are paraphrases of training posts by design: no near-dup checks."""
    if method in G.RULE_OPS:
        off = NearDupConfig(enabled=False)
        return FilterConfig(near_dup_train=off, near_dup_synth=off)
    return FilterConfig()


def _filter_config(cfg: AugmentConfig) -> FilterConfig:
    filters = cfg.filters or default_filters(cfg.method)
    if cfg.tolerance is not None:
        label = LabelConfig(enabled=filters.label.enabled, tolerance=cfg.tolerance)
        filters = filters.model_copy(update={"label": label})
    return filters


def _check(cfg: AugmentConfig) -> None:
    if not cfg.protect and not cfg.no_protect:
        raise UserError("give the held-out files with --protect VAL [--protect TEST] so no synthetic post "
                        "can copy them, or pass --no-protect to skip the leakage check")
    if cfg.protect and cfg.no_protect:
        raise UserError("--protect and --no-protect contradict each other")
    if cfg.relabel not in ("none", "llm") and not Path(cfg.relabel).is_dir():
        raise UserError(f"--relabel {cfg.relabel!r}: use none, llm, or a trained model directory")
    check_outputs_of(cfg)


def _make_source(cfg: AugmentConfig, scheme: LabelScheme, train: Dataset, runner: Runner | None,
                 caps: dict[int, int], augmenter: Augmenter | None) -> G.Source:
    raw = cfg.out / "raw"
    if cfg.method in G.RULE_OPS:
        return G.RuleRewriter(cfg.method, train, seed=cfg.seed, max_units=caps, augmenter=augmenter)
    assert runner is not None
    per_post = estimate_tokens_per_post(train.texts)
    if cfg.method == "backtranslate":
        return G.BackTranslator(runner, train, seed=cfg.seed, temperature=cfg.temperature,
                                max_tokens=cfg.max_tokens or 2 * per_post + 32, raw_dir=raw)
    return G.LLMGenerator(runner, load_prompt(cfg.prompt), scheme, train, shots=cfg.shots,
                          posts_per_request=cfg.posts_per_request, seed=cfg.seed,
                          temperature=cfg.temperature, top_p=cfg.top_p,
                          max_tokens=cfg.max_tokens or math.ceil(1.5 * cfg.posts_per_request * per_post) + 32,
                          raw_dir=raw)


def _plan(cfg: AugmentConfig, scheme: LabelScheme, train: Dataset, prompt_tokens: int) -> Plan:
    unit = cfg.posts_per_request if cfg.method == "llm" else 1
    counts = Counter(r.label for r in train.rows)
    return build_plan(dict(counts), cfg.balance, scheme.labels, posts_per_request=unit,
                      overgenerate=cfg.overgenerate, prompt_tokens_per_request=prompt_tokens,
                      tokens_per_post=estimate_tokens_per_post(train.texts))


def _write_plan(cfg: AugmentConfig, plan: Plan, caps: dict[int, int]) -> None:
    unit = {"llm": "requests", "backtranslate": "source posts (2 requests each)"}.get(cfg.method, "rewrites")
    head = f"# Augmentation plan: `{cfg.method}` on `{cfg.train}`\n\n"
    cap = (f"{cfg.max_requests_per_level}" if cfg.max_requests_per_level
           else f"3x the planned number (at most {max(caps.values(), default=0)})")
    tail = f"\nPer-level cap over all rounds: {cap} {unit} (`--max-requests-per-level`).\n"
    body = plan.to_markdown(rule_based=cfg.method in G.RULE_OPS)
    atomic_write(cfg.out / "plan.md", lambda fh: fh.write(head + body + tail))
    data = {**plan.model_dump(mode="json"), "method": cfg.method, "caps": caps}
    atomic_write(cfg.out / "plan.json", lambda fh: fh.write(json.dumps(data, indent=2) + "\n"))


def _load(cfg: AugmentConfig) -> tuple[LabelScheme, Dataset, list[Dataset]]:
    scheme = scheme_for_task(cfg.task)
    train = load_dataset(cfg.train, scheme)
    # Protect files may be unlabelled or use another scheme: only their texts matter.
    protect = [load_dataset(p, None, require_labels=False) for p in cfg.protect]
    # A held-out post must never reach the training corpus, even when the user's own
    # split already leaks it (SOS-1K's train and val share one post up to punctuation):
    # exact copies are dropped; near-copies are reported, and dropped on request.
    filters = _filter_config(cfg)
    copies = find_copies(train.rows, [r for d in protect for r in d.rows], filters.leakage, filters.shingle_n)
    train = without_copies(train, copies, cfg.drop_near_protected)
    for line in copy_lines(train.meta["held_out_copies"]):
        log.warning("%s", line)
    return scheme, train, protect


@locks_output("cfg.out")
def run_augment(cfg: AugmentConfig, *, runner: Runner | None = None, relabel: Relabel | None = None,
                augmenter: Augmenter | None = None, on_plan: Callable[[str], None] | None = None,
                report_links: Sequence[tuple[str, str]] = (), batch: BatchMode | None = None) -> AugmentResult:
    """Plan, generate, filter and write the balanced corpus (see the module docstring).

    ``runner`` (default: built from ``cfg.llm``), ``relabel`` (default: from
    ``cfg.relabel``) and ``augmenter`` can be injected, e.g. by tests; ``on_plan``
    receives the plan (Markdown) once it is written, before anything is spent;
    ``report_links`` ((text, relative href) pairs) go at the top of the report pages.
    ``batch``: each round's requests go to batch files (a cycle per round) and the run stops
    with :class:`~llm_aug.llm.batch.BatchDeferred`; ``jobs.batch_collect`` continues it.
    """
    _check(cfg)
    scheme, train, protect = _load(cfg)
    needs_llm = cfg.method in ("llm", "backtranslate") or cfg.relabel == "llm"
    if batch is not None and needs_llm:
        if runner is not None:
            raise ValueError("give batch= or runner=, not both (a runner has its dispatch already)")
        batch.job = JobCall.of("run_augment", cfg=_absolute(cfg))
    if runner is None and needs_llm:
        runner = build_runner(cfg.llm, batch=batch)
    source, plan, caps = _prepare(cfg, scheme, train, runner, augmenter)
    plan_md = (cfg.out / "plan.md").read_text(encoding="utf-8")
    if on_plan is not None:  # shown once: by the caller, else in the log
        on_plan(plan_md)
    else:
        log.info("plan (%s):\n%s", cfg.out / "plan.md", plan_md)
    if note := nothing_to_add(plan):  # a balanced file with --balance max: say why 0 posts come
        log.warning("%s", note)
    result = AugmentResult(out=cfg.out, plan=plan, before={lv.label: lv.have for lv in plan.levels},
                           targets={lv.label: lv.have + lv.need for lv in plan.levels},
                           protected_copies=train.meta["held_out_copies"])
    if cfg.dry_run:
        first = {lv.label: lv.requests for lv in plan.levels if lv.requests}
        dry = getattr(source, "dry_run", None)
        return result.model_copy(update={"dry_run": dry(first) if dry is not None else None})
    relabeller = relabel or _relabeller(cfg, scheme, runner)
    writer = CorpusWriter(cfg.out, cfg.corpus_format)
    try:
        rounds = RoundLoop(source, {lv.label: lv.need for lv in plan.levels}, caps, cfg.overgenerate,
                           Filters(_filter_config(cfg), train, protect, relabeller), writer)
        rounds.run()
        rounds.filters = None  # free the duplicate indexes before the report builds its own
    except BaseException as exc:
        writer.discard()
        if is_disk_full(exc):  # a part file's write: name the folder, in one line
            raise DiskFull(disk_full_message(exc, cfg.out)) from None  # type: ignore[arg-type]
        raise
    return _finish(cfg, result, rounds, train, source.summaries + getattr(relabeller, "summaries", []),
                   report_links)


def _absolute(cfg: AugmentConfig) -> AugmentConfig:
    """``cfg`` with a relabelling model directory made absolute (a collect may run elsewhere)."""
    if cfg.relabel not in ("none", "llm") and Path(cfg.relabel).exists():
        return cfg.model_copy(update={"relabel": str(Path(cfg.relabel).resolve())})
    return cfg


def _prepare(cfg: AugmentConfig, scheme: LabelScheme, train: Dataset, runner: Runner | None,
             augmenter: Augmenter | None) -> tuple[G.Source, Plan, dict[int, int]]:
    """The candidate source, the plan (with the prompt's real size) and per-level caps."""
    plan = _plan(cfg, scheme, train, 0)
    caps = {lv.label: cfg.max_requests_per_level or 3 * lv.requests for lv in plan.levels}
    source = _make_source(cfg, scheme, train, runner, caps, augmenter)
    if isinstance(source, G.LLMGenerator):
        plan = _plan(cfg, scheme, train, source.prompt_tokens())
    _write_plan(cfg, plan, caps)
    return source, plan, caps


def _finish(cfg: AugmentConfig, result: AugmentResult, rounds: RoundLoop, train: Dataset,
            summaries: list[RunSummary], links: Sequence[tuple[str, str]] = ()) -> AugmentResult:
    """Count, and write corpus, report and manifest."""
    after = Counter(result.before) + Counter({lv: len(rows) for lv, rows in rounds.accepted.items()})
    rejections = rejection_counts_of(rounds.rejections)
    result = result.model_copy(update={
        "after": {lv: after[lv] for lv in result.before}, "rounds": rounds.rounds,
        "n_candidates": rounds.n_candidates, "usage": usage_totals(summaries),
        "shortfall": {lv: t - after[lv] for lv, t in result.targets.items() if after[lv] < t},
        "rejections": {**rejections, "surplus": rounds.rejections["surplus"]}, "round_stats": rounds.stats})
    _log_levels(result, rounds)
    files = rounds.writer.finish(train)
    result = result.model_copy(update={"corpus_file": files.table.name})
    write_report(cfg, result, train, rounds.accepted, links)
    write_augment_manifest(cfg, result, files, rounds.source)
    return result


def _log_levels(result: AugmentResult, rounds: RoundLoop) -> None:
    """One line per level that needed posts, naming the level."""
    for lv, target in sorted(result.targets.items()):
        have = result.before.get(lv, 0)
        if target > have:
            log.info("level %d: %d accepted of %d candidates (%d -> %d posts, target %d)",
                     lv, result.after.get(lv, 0) - have, rounds.made[lv], have, result.after.get(lv, 0), target)


def _relabeller(cfg: AugmentConfig, scheme: LabelScheme, runner: Runner | None) -> Relabel | None:
    if cfg.relabel == "none":
        return None
    if cfg.relabel == "llm":
        assert runner is not None
        return LLMRelabeller(runner, scheme, cfg.out / "raw", cfg.seed)
    return model_relabeller(Path(cfg.relabel), scheme)
