"""Relabellers for the augment label filter: each maps synthetic texts to predicted levels.

* :class:`LLMRelabeller`   the LLM classification prompt through the pipeline's runner.
* :func:`model_relabeller` a classifier directory written by ``llm-aug train``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from llm_aug.classifiers.store import load_model
from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset, Row, content_id
from llm_aug.data.schemes import LabelScheme
from llm_aug.llm.runner import Runner, RunSummary
from llm_aug.prompting.classify import ClassifyConfig, classify_dataset


class LLMRelabeller:
    """Classifies synthetic posts with the LLM classification prompt; each text once.

    Call ``i`` keeps its predictions in ``raw/relabel-<i>.jsonl`` (plus the runner's
    resumable ``.raw.jsonl``); calls happen in the same order on a rerun.
    """

    def __init__(self, runner: Runner, scheme: LabelScheme, raw_dir: Path, seed: int) -> None:
        self.runner, self.scheme, self.raw_dir = runner, scheme, raw_dir
        self.cfg = ClassifyConfig(seed=seed)
        self.known: dict[str, int | None] = {}
        self.summaries: list[RunSummary] = []

    def __call__(self, texts: list[str]) -> list[int | None]:
        new = list(dict.fromkeys(t for t in texts if t not in self.known))
        if new:
            out = self.raw_dir / f"relabel-{len(self.summaries)}.jsonl"
            data = Dataset([Row(content_id(t), t) for t in new], scheme=self.scheme)
            self.summaries.append(classify_dataset(data, self.scheme, self.runner, self.cfg, out))
            preds = [json.loads(line)["pred"] for line in out.read_text(encoding="utf-8").splitlines()]
            self.known.update(zip(new, preds))
        return [self.known[t] for t in texts]


def model_relabeller(model_dir: Path, scheme: LabelScheme) -> Callable[[list[str]], list[int | None]]:
    """A trained classifier directory's ``predict`` as the label filter's relabeller."""
    estimator, model_scheme, _ = load_model(model_dir)
    if model_scheme.labels != scheme.labels:
        raise UserError(f"{model_dir}: model predicts labels {model_scheme.labels}, task needs {scheme.labels}")
    return lambda texts: [int(p) for p in estimator.predict(list(texts))] if texts else []
