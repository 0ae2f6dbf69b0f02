"""``prompts optimize``: search exemplar sets (and wordings) on train folds, confirm once on val.

Rounds, each one ``runner.run`` with its results file under ``OUT/runs/`` (a rerun after a
crash resumes there and the request cache answers the rest; under batch mode each round
is one batch cycle that ``batch collect`` continues):

1. bootstrap: the base prompt, as given (no exemplars), on every train post; posts it
   labels correctly are the exemplar pool.
2. candidates: every candidate (a template and a fixed exemplar set drawn from the pool,
   stratified by level) on every train post but its own exemplars; its score is the
   mean of ``metric`` over the train folds.
3. confirm: base and winner on val, once, compared with a paired bootstrap.

Test data is never read. ``budget`` caps the requests: each round's cost is counted
before sending (the runner's dry run: after resume and cache) and recorded in
``OUT/search_state.json``, so reruns and batch continuations plan the same search.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_text
from llm_aug.core.lock import locks_output
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import Dataset, Row, load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.bootstrap import paired_bootstrap
from llm_aug.eval.metrics import LOWER_IS_BETTER, headline_metrics
from llm_aug.jobs import optimize_search as search
from llm_aug.jobs.optimize_report import Candidate, OptimizeResult, ValCheck, format_report
from llm_aug.llm import LLMConfig, build_runner, load_llm_config
from llm_aug.llm.batch import BatchMode, JobCall
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, SamplingParams
from llm_aug.prompting import load_prompt
from llm_aug.prompting.classify import ClassifyConfig, check_prompt
from llm_aug.prompting.templates import Prompt

log = logging.getLogger(__name__)
_WRITES = ("report.json", "report.md", "manifest.json", "search_state.json")


def _params(cfg: ClassifyConfig) -> SamplingParams:
    # As classify's one greedy answer: the winner's requests on val are the ones
    # ``classify --prompt WINNER`` sends, so that run finds them cached.
    return SamplingParams(temperature=cfg.temperature if cfg.temperature is not None else 0.0,
                          max_tokens=cfg.max_tokens, seed=cfg.seed, n=1)


class _Search:
    """State of one search: data, runner, the recorded plan and costs."""

    def __init__(self, base: Prompt, templates: list[Prompt], scheme: LabelScheme, train: Dataset,
                 val: Dataset, runner: Runner, out: Path, settings: dict[str, Any]) -> None:
        self.base, self.templates, self.scheme = base, templates, scheme
        self.train, self.val, self.runner, self.out = train, val, runner, out
        self.settings = settings
        cfg = ClassifyConfig.model_validate(settings["classify"])
        self.params, self.structured = _params(cfg), cfg.structured
        self.state_path = out / "search_state.json"
        self.state = self._load_state()

    def _load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"settings": self.settings}
        state = json.loads(self.state_path.read_text("utf-8"))
        if state.get("settings") != self.settings:
            raise UserError(f"{self.out} holds a search with other settings; use another --out "
                            f"(or delete {self.state_path})")
        return state

    def record(self, key: str, value: Any) -> Any:
        self.state[key] = value
        atomic_write_text(self.state_path, search.dump_json(self.state))
        return value

    def cost(self, key: str, requests: list[ChatRequest], path: Path) -> int:
        """Requests ``path``'s round needs after resume and cache, counted once and recorded."""
        if key not in self.state:
            self.record(key, self.runner.dry_run(requests, path).n_requests)
        return int(self.state[key])

    def run(self, requests: list[ChatRequest], name: str) -> Any:
        path = self.out / "runs" / f"{name}.raw.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.runner.run(requests, path).rows


def _templates(base: Prompt, variants: Sequence[Prompt], scheme: LabelScheme) -> list[Prompt]:
    for prompt in (base, *variants):
        check_prompt(prompt, scheme, ClassifyConfig())
    if "exemplars" not in base.variables and not variants:
        raise UserError(f"{base.name} takes no exemplars and no --variants were given: nothing to search "
                        "(start from a few-shot prompt such as classify/fewshot)")
    return [base, *variants]


def _plan(s: _Search, pool: list[Row], shots: int, n: int, seed: int, budget: int,
          spent: int, reserve: int) -> tuple[list[dict[str, Any]], int]:
    """Candidates in the order tried, each with its recorded cost, and how many did not fit."""
    if "plan" in s.state:
        return s.state["plan"], s.state["skipped"]
    specs: list[tuple[Prompt, list[Row]]] = [(t, []) for t in s.templates[1:]]
    for ex_set in search.exemplar_sets(pool, s.train.rows, shots, n, seed):
        specs += [(t, ex_set) for t in s.templates if "exemplars" in t.variables]
    plan, skipped = [], 0
    for i, (template, ex_set) in enumerate(specs, 1):
        cid = f"c{i:02d}"
        cost = s.runner.dry_run(_candidate_requests(s, template, ex_set, cid),
                                s.out / "runs" / "candidates.raw.jsonl").n_requests
        if skipped or spent + cost + reserve > budget:
            skipped += 1
            continue
        spent += cost
        plan.append({"id": cid, "template": template.name, "path": str(template.info.path),
                     "exemplar_ids": [r.id for r in ex_set], "requests": cost})
    s.record("plan", plan)
    s.record("skipped", skipped)
    return plan, skipped


def _candidate_requests(s: _Search, template: Prompt, ex_set: Sequence[Row], cid: str) -> list[ChatRequest]:
    own = {r.id for r in ex_set}
    rows = [r for r in s.train.rows if r.id not in own]
    return search.requests_for(template, s.scheme, rows, ex_set, s.params, cid, s.structured)


def _val_check(s: _Search, winner: Prompt, ex_set: list[Row], metric: str, n_boot: int,
               seed: int) -> ValCheck:
    reqs = (search.requests_for(s.base, s.scheme, s.val.rows, [], s.params, "base", s.structured)
            + search.requests_for(winner, s.scheme, s.val.rows, ex_set, s.params, "best", s.structured))
    s.cost("val_requests", reqs, s.out / "runs" / "val.raw.jsonl")
    rows = s.run(reqs, "val")
    base, best = (search.predictions(rows, s.scheme, p) for p in ("base", "best"))
    gold = [r.label for r in s.val.rows]
    pb, pw = [base.get(r.id) for r in s.val.rows], [best.get(r.id) for r in s.val.rows]
    deltas = {}
    for m in dict.fromkeys([metric, *headline_metrics(s.scheme)]):
        t = paired_bootstrap(gold, pw, pb, m, n_boot=n_boot, seed=seed, labels=s.scheme.labels)
        deltas[m] = {"delta": round(t["delta"], 4), "ci": [round(x, 4) for x in t["ci"]],
                     "p_value": round(t["p_value"], 4)}
    head = deltas[metric]
    return ValCheck(n=len(gold), metric=metric, base=round(search.score(s.val.rows, base, s.scheme, metric), 4),
                    winner=round(search.score(s.val.rows, best, s.scheme, metric), 4), delta=head["delta"],
                    ci=head["ci"], p_value=head["p_value"], deltas=deltas)


@locks_output("out")
def optimize_prompt(base: str, task: Task | str, train: str | Path, val: str | Path, *,
                    llm: LLMConfig | Mapping[str, Any], budget: int, out: str | Path = "runs/prompt-optimize",
                    folds: int = 3, candidates: int = 8, shots: int = 3, seed: int = 0,
                    variants: str | Path | None = None, prompt_dir: str | Path | None = None,
                    metric: str = "macro_f1", config: ClassifyConfig | None = None, n_boot: int = 1000,
                    runner: Runner | None = None, batch: BatchMode | None = None) -> OptimizeResult:
    """Search exemplar sets for ``base`` on ``train`` folds within ``budget`` requests; confirm on ``val``.

    Writes the winner as ``<prompt_dir or OUT/prompts>/classify/<name>.v<K+1>.jinja``,
    ``OUT/report.json`` (this result), ``OUT/report.md`` and ``OUT/manifest.json``.
    ``batch``: each round becomes a batch cycle; ``jobs.batch_collect`` continues the search.
    """
    cfg, out, scheme = config or ClassifyConfig(), Path(out), scheme_for_task(task)
    llm = load_llm_config(llm)
    if folds < 2 or candidates < 1 or shots < 1 or budget < 1:
        raise UserError("--folds must be >= 2, --candidates, --shots and --budget >= 1")
    maximised = [m for m in headline_metrics(scheme) if m not in LOWER_IS_BETTER]
    if metric not in maximised:
        raise UserError(f"--metric {metric!r}: the search maximises one of {', '.join(maximised)}")
    variant_dir = Path(variants) if variants is not None else None
    check_outputs(out_dir=out, inputs=(train, val), writes=_WRITES, cache=llm.runner.cache_path)
    base_prompt = load_prompt(base)
    templates = _templates(base_prompt, search.load_variants(variant_dir), scheme)
    train_data, val_data = load_dataset(train, scheme), load_dataset(val, scheme)
    for data in (train_data, val_data):
        search.dataset_ids(data)
    if batch is not None:
        if runner is not None:
            raise ValueError("give batch= or runner=, not both (a runner has its dispatch already)")
        batch.job = JobCall.of("optimize_prompt", base=base, task=scheme.task, train=Path(train), val=Path(val),
                               llm=llm, budget=budget, out=out, folds=folds, candidates=candidates, shots=shots,
                               seed=seed, variants=variant_dir, prompt_dir=Path(prompt_dir) if prompt_dir else None,
                               metric=metric, config=cfg, n_boot=n_boot)
    settings = {"base": base_prompt.name, "base_sha256": base_prompt.sha256,
                "variants": [t.sha256 for t in templates[1:]], "budget": budget, "folds": folds,
                "candidates": candidates, "shots": shots, "seed": seed, "metric": metric,
                "classify": cfg.model_dump(mode="json")}
    s = _Search(base_prompt, templates, scheme, train_data, val_data, runner or build_runner(llm, batch=batch),
                out, settings)
    result = _search(s, shots=shots, n=candidates, k=folds, seed=seed, metric=metric, n_boot=n_boot,
                     prompt_dir=Path(prompt_dir) if prompt_dir else out / "prompts")
    atomic_write_text(out / "report.json", search.dump_json(result.to_json()))
    atomic_write_text(out / "report.md", format_report(result))
    write_manifest(out, "prompts optimize", data_files=[Path(train), Path(val)], seed=seed,
                   config={**settings, "llm": llm.model_dump(mode="json")})
    return result


def _search(s: _Search, *, shots: int, n: int, k: int, seed: int, metric: str, n_boot: int,
            prompt_dir: Path) -> OptimizeResult:
    budget = s.settings["budget"]
    boot_reqs = search.requests_for(s.base, s.scheme, s.train.rows, [], s.params, "base", s.structured)
    spent = s.cost("bootstrap_requests", boot_reqs, s.out / "runs" / "bootstrap.raw.jsonl")
    val_base = search.requests_for(s.base, s.scheme, s.val.rows, [], s.params, "base", s.structured)
    # The val check's cost is held back from the start: base on val (after cache) plus the winner's worst case.
    reserve = s.cost("val_reserve", val_base, s.out / "runs" / "val.raw.jsonl") + len(s.val.rows)
    if spent + reserve > budget:
        raise UserError(f"--budget {budget} is too small: the base on train ({spent} requests) and the val "
                        f"check (up to {reserve}) need {spent + reserve}")
    base_preds = search.predictions(s.run(boot_reqs, "bootstrap"), s.scheme, "base")
    pool = [r for r in s.train.rows if base_preds.get(r.id) == r.label]
    folds = search.stratified_folds(s.train.rows, k, seed)
    plan, skipped = _plan(s, pool, shots, n, seed, budget, spent, reserve)
    by_id = {r.id: r for r in s.train.rows}
    paths = {str(t.info.path): t for t in s.templates}
    specs = [(c, paths[c["path"]], [by_id[i] for i in c["exemplar_ids"]]) for c in plan]
    reqs = [r for c, t, ex in specs for r in _candidate_requests(s, t, ex, c["id"])]
    rows = s.run(reqs, "candidates") if reqs else []
    base_folds = search.cv_scores(s.train.rows, folds, k, base_preds, s.scheme, metric, set())
    tried = [Candidate(id="base", template=s.base.name, path=str(s.base.info.path), exemplar_ids=[], requests=spent, cv_folds=base_folds,
                       cv_score=round(sum(base_folds) / len(base_folds), 4))]
    for c, t, ex in specs:
        fold_scores = search.cv_scores(s.train.rows, folds, k, search.predictions(rows, s.scheme, c["id"]),
                                       s.scheme, metric, {r.id for r in ex})
        tried.append(Candidate(id=c["id"], template=t.name, path=str(t.info.path), exemplar_ids=c["exemplar_ids"],
                               requests=c["requests"], cv_folds=fold_scores,
                               cv_score=round(sum(fold_scores) / len(fold_scores), 4)))
    best = max(tried, key=lambda c: c.cv_score)  # the first of equals: the base wins ties
    spent += sum(c["requests"] for c in plan)
    result = OptimizeResult(base=s.base.name, metric=metric, budget=budget, requests_spent=spent, pool=len(pool),
                            candidates=tried, skipped=skipped, winner=best.id, improved=best.id != "base")
    if not result.improved:
        log.warning("no candidate beat %s on train CV; nothing written", s.base.name)
        return result
    template, ex_set = paths[best.path], [by_id[i] for i in best.exemplar_ids]
    check = _val_check(s, template, ex_set, metric, n_boot, seed)
    result.val, result.requests_spent = check, spent + int(s.state["val_requests"])
    result.prompt_file = _write_winner(s, template, ex_set, best, check, prompt_dir)
    return result


def _write_winner(s: _Search, template: Prompt, ex_set: list[Row], best: Candidate, check: ValCheck,
                  prompt_dir: Path) -> Path:
    """The winner's new prompt version (the same file again on a rerun of the same search)."""
    if "prompt_file" in s.state and Path(s.state["prompt_file"]).is_file():
        return Path(s.state["prompt_file"])
    found = {"by": "llm-aug prompts optimize", "from": s.base.name, "from_sha256": s.base.sha256,
             "template": template.name, "candidate": best.id, "cv_score": best.cv_score,
             "metric": check.metric, "val": {"n": check.n, "delta": check.delta, "ci": check.ci,
                                             "p_value": check.p_value}}
    version = search.next_version(s.base, prompt_dir)
    path = prompt_dir / s.base.info.family / f"{s.base.info.base}.v{version}.jinja"
    search.write_winner(search.winner_source(template, ex_set, found), path, best.exemplar_ids)
    s.record("prompt_file", str(path))
    return path
