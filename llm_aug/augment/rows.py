"""The synthetic row: one generated post and everything needed to trace it."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_aug.data.normalize import normalize_text


class PromptRef(BaseModel):
    """Which prompt template produced a row: its name and a hash of its text."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    sha: str


class SynthRow(BaseModel):
    """A generated (or rewritten) post with provenance and the filters' verdicts.

    ``scores`` holds one number per filter that looked at the row (see
    :mod:`llm_aug.augment.filters`); ``rejected_by`` names the filter that dropped it
    and ``reject_reason`` says why, both ``None`` for kept rows.
    """

    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    label: int
    synthetic: bool = True
    method: str
    source_ids: list[str] = Field(default_factory=list)
    exemplar_ids: list[str] = Field(default_factory=list)
    prompt: PromptRef | None = None
    model: str | None = None
    seed: int | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    rejected_by: str | None = None
    reject_reason: str | None = None

    @field_validator("text")
    @classmethod
    def _normalise(cls, v: str) -> str:
        # The same clean-up the loader applies, so corpus.jsonl and corpus.tsv (as read
        # back) hold the same text, and no tab or newline reaches the TSV.
        return normalize_text(v)


def synth_id(method: str, text: str, *parts: object) -> str:
    """Stable id of a synthetic row: method prefix plus a hash of text and ``parts``."""
    key = "\x1f".join([method, text, *map(str, parts)])
    return f"{method}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:12]}"
