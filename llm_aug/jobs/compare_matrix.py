"""Prompt matrix: N prompts x M models x shot settings, each cell against a baseline cell.

Every cell is an ordinary classify run (``OUT/<cell>/predictions.jsonl``, scored as
``results.json``), so a cell's predictions are byte for byte those of ``llm-aug
classify`` with the same prompt, model and shots. Each cell is compared with the
baseline cell by a paired bootstrap (two-sided p-values, Holm-corrected across cells
per metric); the optional gate asks, one-sided, whether a cell is worse than the
baseline by more than a margin (Holm across cells, alpha 0.05).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from llm_aug.core.errors import UserError
from llm_aug.core.files import PREDICTIONS_FILE, atomic_write_text, data_digest
from llm_aug.core.lock import locks_output
from llm_aug.core.manifest import write_manifest
from llm_aug.core.paths import check_outputs
from llm_aug.data.io import Dataset, load_dataset
from llm_aug.data.schemes import LabelScheme, Task, scheme_for_task
from llm_aug.eval.bootstrap import holm, paired_bootstrap, worse_p_value
from llm_aug.eval.metrics import METRICS, headline_metrics
from llm_aug.eval.results import score_predictions, write_results
from llm_aug.jobs.classify import prediction_counts
from llm_aug.jobs.compare_prompts import _flips, _slug
from llm_aug.jobs.matrix_types import Cell, CellCost, CellDelta, CellResult, Gate, MatrixReport, format_matrix
from llm_aug.llm import LLMConfig, build_runner, load_llm_config
from llm_aug.llm.batch import BatchMode, JobCall
from llm_aug.prompting.classify import ClassifyConfig, classify_dataset, load_checked_prompt

_WRITES = ("matrix.json", "matrix.md", "matrix.html", "manifest.json")
ALPHA = 0.05
logger = logging.getLogger(__name__)

__all__ = ["Cell", "CellResult", "Gate", "MatrixReport", "compare_matrix", "format_matrix", "plan_cells"]


def plan_cells(prompts: Sequence[str], models: Sequence[str], shots: Sequence[int],
               strategies: Sequence[str]) -> list[Cell]:
    """Every (prompt, model, shots, strategy); zero shots is one cell whatever the strategies."""
    settings: list[tuple[int, str]] = []
    for k in shots:
        for strategy in (strategies[:1] if k == 0 else strategies):
            if (k, strategy) not in settings:
                settings.append((k, strategy))
    cells = [Cell(prompt=p, model=m, shots=k, shot_strategy=s) for p in prompts for m in models for k, s in settings]
    if len({c.label for c in cells}) != len(cells):
        raise UserError("the matrix names a cell twice (a prompt or model given twice?)")
    return cells


def pick_baseline(cells: Sequence[Cell], baseline: str | int | None) -> int:
    """The baseline cell's index: a label ``prompt@model@shots[/strategy]``, an index, or the first."""
    if baseline is None or baseline == "":
        return 0
    if isinstance(baseline, int) or str(baseline).isdigit():
        i = int(baseline)
        if not 0 <= i < len(cells):
            raise UserError(f"--baseline {i}: the matrix has cells 0..{len(cells) - 1}")
        return i
    labels = [c.label for c in cells]
    if baseline in labels:
        return labels.index(str(baseline))
    prefixed = [i for i, lab in enumerate(labels) if lab.startswith(f"{baseline}@") or lab.split("@")[0] == baseline]
    if len(prefixed) == 1:
        return prefixed[0]
    raise UserError(f"--baseline {baseline!r} is not one cell; cells: {', '.join(labels)}")


def _model_llm(llm: LLMConfig, model: str) -> LLMConfig:
    if getattr(llm.backend, "model", None) == model:
        return llm
    return llm.model_copy(update={"backend": llm.backend.model_copy(update={"model": model})})


def parse_gate(spec: str | None) -> tuple[str, float] | None:
    """``weighted_f1:0.01`` -> ("weighted_f1", 0.01); ``None`` -> no gate."""
    if not spec:
        return None
    metric, _, margin = spec.partition(":")
    if metric not in METRICS:
        raise UserError(f"--fail-if-worse {spec}: unknown metric {metric!r}; use one of: {', '.join(METRICS)}")
    try:
        value = float(margin) if margin else 0.0
    except ValueError:
        raise UserError(f"--fail-if-worse {spec}: the margin must be a number, e.g. {metric}:0.01") from None
    if value < 0:
        raise UserError(f"--fail-if-worse {spec}: the margin must be >= 0")
    return metric, value


@locks_output("out")
def compare_matrix(prompts: Sequence[str], task: Task | str, input_file: str | Path, *,
                   llm: LLMConfig | Mapping[str, Any], models: Sequence[str] | None = None,
                   shots: Sequence[int] = (0,), shot_strategies: Sequence[str] = ("similar",),
                   out: str | Path = "runs/prompt-compare", gold: str | Path | None = None,
                   config: ClassifyConfig | None = None, train: str | Path | None = None,
                   n_boot: int = 1000, html: bool = False, baseline: str | int | None = None,
                   fail_if_worse: str | None = None, history: str | Path | None = None,
                   eval_split: str | None = None, command: str | None = None,
                   batch: BatchMode | None = None) -> MatrixReport:
    """The prompt matrix on files; ``history``: append one record per cell to that JSONL file.

    ``fail_if_worse`` (``METRIC[:MARGIN]``) sets ``report.gate``; the job itself never exits.
    """
    cfg, out, scheme, llm = config or ClassifyConfig(), Path(out), scheme_for_task(task), load_llm_config(llm)
    gate_spec = parse_gate(fail_if_worse)
    models = list(models or [getattr(llm.backend, "model", llm.backend.kind)])
    cells, skipped = _fitting_cells(plan_cells(list(prompts), models, list(shots), list(shot_strategies)),
                                    scheme, cfg, has_train=train is not None)
    if len(cells) < 2:
        raise UserError("a comparison needs at least two cells (prompts x models x shot settings)")
    base = pick_baseline(cells, baseline)
    check_outputs(out_dir=out, inputs=(input_file, gold, train), writes=_WRITES, cache=llm.runner.cache_path)
    data, gold_data, train_data = _load_inputs(input_file, gold, train, scheme)
    if batch is not None:
        batch.job = _batch_job(prompts=list(prompts), task=scheme.task, input_file=Path(input_file),
                               llm=llm, models=models, shots=list(shots), shot_strategies=list(shot_strategies),
                               out=out, gold=Path(gold) if gold else None, config=cfg,
                               train=Path(train) if train else None, n_boot=n_boot, html=html,
                               baseline=baseline, fail_if_worse=fail_if_worse,
                               history=Path(history) if history else None, eval_split=eval_split, command=command)
    runners = {m: build_runner(_model_llm(llm, m), batch=batch) for m in models}
    report = matrix_datasets(cells, base, data, gold_data, scheme, runners, cfg, out, train=train_data,
                             n_boot=n_boot, gate=gate_spec)
    report.skipped = skipped
    _write_report(report, out, html)
    files = [Path(p) for p in (input_file, gold, train) if p]
    write_manifest(out, "prompts compare", data_files=files, seed=cfg.seed,
                   config={"cells": [c.label for c in cells], "baseline": cells[base].label,
                           "classify": cfg.model_dump(), "llm": llm.model_dump(mode="json")})
    if history:
        _append_history(history, report, Path(gold or input_file), eval_split, command)
    return report


def _load_inputs(input_file: str | Path, gold: str | Path | None, train: str | Path | None,
                 scheme: LabelScheme) -> tuple[Dataset, Dataset, Dataset | None]:
    """The posts to classify, the gold labels (the input file's own by default) and the shot pool."""
    data = load_dataset(input_file, scheme, require_labels=False)
    gold_data = load_dataset(gold or input_file, scheme)
    train_data = load_dataset(train, scheme) if train else None
    return data, gold_data, train_data


def _batch_job(**kwargs: Any) -> JobCall:
    """The call ``llm-aug batch collect`` reruns, recorded with the batch run."""
    if len(kwargs["models"]) > 1:
        raise UserError("batch mode takes one model per run (a batch run directory holds one model's "
                        "batches): run the matrix once per --model, or live")
    return JobCall.of("compare_matrix", **kwargs)


def _write_report(report: MatrixReport, out: Path, html: bool) -> None:
    """matrix.json, matrix.md and, with ``html``, matrix.html (its path set on ``report``)."""
    if html:
        from llm_aug.eval.grid_page import write_grid

        report.html = write_grid(report.to_json(), out / "matrix.html")
    atomic_write_text(out / "matrix.json", json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    atomic_write_text(out / "matrix.md", format_matrix(report) + "\n")


def _append_history(history: str | Path, report: MatrixReport, data_file: Path, eval_split: str | None,
                    command: str | None) -> None:
    from llm_aug.jobs.prompt_history import append_records

    append_records(history, history_records(report, data_file, eval_split, command))


def _fitting_cells(cells: list[Cell], scheme: LabelScheme, cfg: ClassifyConfig, *,
                   has_train: bool) -> tuple[list[Cell], dict[str, str]]:
    """The cells whose prompt takes their shot setting; the others (a zero-shot prompt at 3 shots) skipped.

    A prompt that fits none of the settings is an error (its own message).
    """
    kept, skipped, errors = [], {}, {}
    for c in cells:
        try:
            load_checked_prompt(scheme, _cell_cfg(cfg, c), has_train=has_train)
        except UserError as exc:
            skipped[c.label], errors[c.prompt] = str(exc), exc
        else:
            kept.append(c)
    for prompt, exc in errors.items():
        if not any(c.prompt == prompt for c in kept):
            raise exc
    if skipped:
        logger.warning("skipped %d cells whose prompt does not take the shot setting: %s",
                       len(skipped), ", ".join(skipped))
    return kept, skipped


def _cell_cfg(cfg: ClassifyConfig, cell: Cell) -> ClassifyConfig:
    return cfg.model_copy(update={"prompt": cell.prompt, "shots": cell.shots, "shot_strategy": cell.shot_strategy})


def matrix_datasets(cells: Sequence[Cell], base: int, data: Dataset, gold: Dataset, scheme: LabelScheme,
                    runners: Mapping[str, Any], cfg: ClassifyConfig, out: Path, *, train: Dataset | None = None,
                    n_boot: int = 1000, gate: tuple[str, float] | None = None) -> MatrixReport:
    """Run every cell (its own subdirectory of ``out``), score it, compare it with ``cells[base]``."""
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for c, name in zip(cells, cell_dirs(cells)):
        runs.append(_run_cell(c, out / name, data, gold, scheme, runners[c.model], _cell_cfg(cfg, c), train, n_boot))
    metrics = headline_metrics(scheme)
    base_preds, base_res = runs[base]
    results = [_cell_result(c, preds, res, metrics) for c, (preds, res) in zip(cells, runs)]
    others = [i for i in range(len(cells)) if i != base]
    for i in others:
        results[i].vs_baseline = _deltas(runs[i][1], base_res, metrics, scheme, n_boot)
        results[i].per_class_f1_delta = {lab: round(runs[i][1]["per_class"][lab]["f1"] - base_res["per_class"][lab]["f1"], 4)
                                         for lab in base_res["per_class"]}
        flips_file = runs[i][0].parent / "flips.jsonl"
        results[i].flips = _flips(base_preds, runs[i][0], gold, flips_file)
        results[i].flips_file = flips_file
    for metric in metrics:  # Holm across the cells compared, one family per metric
        adjusted = holm([results[i].vs_baseline[metric].p_value for i in others])
        for i, p in zip(others, adjusted):
            results[i].vs_baseline[metric].p_holm = p
    report = MatrixReport(n=base_res["n"], baseline=cells[base].label, metrics=metrics, cells=results)
    if gate is not None:
        report.gate = _gate(gate, runs, base, others, cells, scheme, n_boot)
    return report


def cell_dirs(cells: Sequence[Cell]) -> list[str]:
    """Each cell's subdirectory: ``prompt@model@shots`` made file-safe (a prompt file by its name)."""
    def short(c: Cell) -> str:
        prompt = Path(c.prompt).name if c.prompt.endswith(".jinja") else c.prompt
        return _slug(Cell(prompt=prompt, model=c.model, shots=c.shots, shot_strategy=c.shot_strategy).label)

    names = [short(c) for c in cells]
    if len(set(names)) < len(names):  # two prompt files of one name in different folders
        names = [f"{i:02d}_{name}" for i, name in enumerate(names)]
    return names


def _run_cell(cell: Cell, run_dir: Path, data: Dataset, gold: Dataset, scheme: LabelScheme, runner: Any,
              cfg: ClassifyConfig, train: Dataset | None, n_boot: int) -> tuple[Path, dict]:
    """One cell as one classify run in ``run_dir`` (as compare runs each prompt)."""
    preds = run_dir / PREDICTIONS_FILE
    summary = classify_dataset(data, scheme, runner, cfg, preds, train=train)
    results = score_predictions(preds, gold, scheme, n_boot=n_boot)
    results["usage"] = summary.to_manifest()
    write_results(run_dir, results, scheme, name=cell.label)
    return preds, results


def _cell_result(cell: Cell, preds: Path, res: dict, metrics: list[str]) -> CellResult:
    ok, failed = prediction_counts(preds)
    usage = res.get("usage") or {}
    cost = CellCost(requests=usage.get("requests_made", 0), prompt_tokens=usage.get("prompt_tokens", 0),
                    completion_tokens=usage.get("completion_tokens", 0), seconds=usage.get("wall_s", 0.0),
                    cached=usage.get("n_cached", 0), cost_usd=usage.get("cost_usd"))
    return CellResult(**cell.model_dump(), label=cell.label, dir=preds.parent, predictions=preds, n=res["n"],
                      metrics={m: res.get(m) for m in metrics},
                      ci={m: list(res["ci"][m]) for m in metrics if m in res.get("ci", {})},
                      per_class_f1={k: round(v["f1"], 4) for k, v in res["per_class"].items()},
                      invalid_rate=res["invalid_rate"], ok=ok, failed=failed, cost=cost)


def _deltas(res: dict, base_res: dict, metrics: list[str], scheme: LabelScheme, n_boot: int) -> dict[str, CellDelta]:
    gold = base_res["items"]["gold"]
    out = {}
    for metric in metrics:
        t = paired_bootstrap(gold, res["items"]["pred"], base_res["items"]["pred"], metric,
                             n_boot=n_boot, labels=scheme.labels)
        out[metric] = CellDelta(delta=t["delta"], ci=list(t["ci"]), p_value=t["p_value"])
    return out


def _gate(spec: tuple[str, float], runs: list, base: int, others: list[int], cells: Sequence[Cell],
          scheme: LabelScheme, n_boot: int) -> Gate:
    metric, margin = spec
    base_res = runs[base][1]
    raw = [worse_p_value(base_res["items"]["gold"], runs[i][1]["items"]["pred"], base_res["items"]["pred"], metric,
                         margin, n_boot=n_boot, labels=scheme.labels) for i in others]
    adjusted = holm(raw)
    p_holm = {cells[i].label: p for i, p in zip(others, adjusted)}
    worse = [label for label, p in p_holm.items() if p < ALPHA]
    return Gate(metric=metric, margin=margin, alpha=ALPHA, p_raw={cells[i].label: p for i, p in zip(others, raw)},
                p_holm=p_holm, worse=worse, passed=not worse)


def history_records(report: MatrixReport, data_file: Path, eval_split: str | None,
                    command: str | None) -> list[dict[str, Any]]:
    """One history record per cell of ``report``."""
    from llm_aug.jobs.prompt_history import cell_record, now_utc

    date, sha = now_utc(), data_digest(data_file)
    return [cell_record(prompt=c.prompt, model=c.model, shots=c.shots, shot_strategy=c.shot_strategy, n=c.n,
                        metrics=c.metrics, ci=c.ci, data_file=data_file, data_sha256=sha, eval_split=eval_split,
                        command=command, date=date, out=c.dir, baseline=report.baseline)
            for c in report.cells]
