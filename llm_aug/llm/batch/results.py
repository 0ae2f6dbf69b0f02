"""Import Batch API output lines into the request cache.

An output line (OpenAI Batch API, and ``vllm run-batch``) is
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``, the
body a chat completion. It is parsed with the live calls' parser and its samples stored
under ``custom_id`` (the request's cache key): rerunning the command then answers the
request from the cache exactly as after a live run. Failed or missing lines are left
out of the cache, so the rerun asks for them again (live or as a new batch). Two lines
answering one custom id differently stop the import (one line naming both).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from llm_aug.core.errors import UserError
from llm_aug.llm.backends.base import check_generations
from llm_aug.llm.backends.openai_compat import parse_completion
from llm_aug.llm.batch.manifest import BatchCycle
from llm_aug.llm.cache import RequestCache
from llm_aug.llm.privacy import install_log_filter, redact
from llm_aug.llm.types import BackendError, ChatRequest, Generation, Message, SamplingParams

logger = install_log_filter(logging.getLogger(__name__))


@dataclass
class ImportCounts:
    """What an import did: answered and failed custom ids, lines for unknown ids."""

    ok: set[str] = field(default_factory=set)
    failed: Counter[str] = field(default_factory=Counter)  # error kind -> lines
    failed_ids: set[str] = field(default_factory=set)
    unknown: int = 0
    repeated: int = 0  # lines repeating an earlier line's answer word for word
    prompt_tokens: int = 0  # what the batches spent: the rerun's cache hits count none
    completion_tokens: int = 0
    # custom id -> (its answer's texts, where that answer was read): spots a second,
    # different answer for one id, in this file or another file of the same collect.
    seen: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)


class ConflictingAnswers(UserError):
    """Two lines answer one custom id differently: which one is right cannot be told."""


def cycle_requests(run_dir: Path, cycle: BatchCycle) -> dict[str, ChatRequest]:
    """The cycle's requests by custom id, rebuilt from its request files (messages and ``n``)."""
    out: dict[str, ChatRequest] = {}
    for entry in cycle.files:
        with (Path(run_dir) / entry.name).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    data = json.loads(line)
                    body = data["body"]
                    out[data["custom_id"]] = ChatRequest(
                        id=data["custom_id"],
                        messages=tuple(Message(role=m["role"], content=m["content"])
                                       for m in body["messages"]),
                        params=SamplingParams(n=int(body.get("n") or 1)))
    return out


def parse_output_line(line: str, requests: dict[str, ChatRequest]
                      ) -> tuple[str | None, list[Generation] | None, str | None]:
    """(custom id, samples, None) for an answered line, (custom id, None, error) otherwise."""
    try:
        data = json.loads(line)
        custom_id = data.get("custom_id")
    except (ValueError, AttributeError):
        return None, None, "unreadable line"
    request = requests.get(custom_id)
    if request is None:
        return custom_id, None, "unknown custom_id"
    error, response = data.get("error"), data.get("response")
    if error:
        message = error.get("message") or error.get("code") if isinstance(error, dict) else error
        return custom_id, None, f"batch error: {redact(str(message))[:200]}"
    if not isinstance(response, dict):
        return custom_id, None, "no response"
    # vLLM and OpenAI wrap the completion in {status_code, body}; a bare completion is accepted.
    body: Any = response.get("body", response) if "choices" not in response else response
    status = int(response.get("status_code") or 200)
    if status >= 400:
        return custom_id, None, f"HTTP {status}: {redact(json.dumps(body, ensure_ascii=False))[:200]}"
    try:
        raw = json.dumps(body, ensure_ascii=False).encode()
        return custom_id, check_generations(request, parse_completion(request, raw)), None
    except BackendError as exc:
        return custom_id, None, f"{type(exc).__name__}: {exc}"


def read_answers(lines: Iterable[str], requests: dict[str, ChatRequest], counts: ImportCounts,
                 source: str = "results") -> dict[str, list[Generation]]:
    """The answered lines' samples by custom id; failed and unknown lines counted.

    A line repeating an earlier answer word for word is counted in ``repeated``; one giving
    the same custom id a different answer raises :class:`ConflictingAnswers` naming both.
    """
    answers: dict[str, list[Generation]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        custom_id, gens, error = parse_output_line(line, requests)
        if gens is not None and custom_id is not None:
            texts, where = tuple(g.text for g in gens), f"{source} line {number}"
            first = counts.seen.get(custom_id)
            if first is not None:
                if first[0] != texts:
                    raise ConflictingAnswers(
                        f"{where}: custom_id {custom_id} has a different answer than {first[1]}; "
                        "keep one line per custom_id and collect again (nothing was imported)")
                counts.repeated += 1
                continue
            counts.seen[custom_id] = (texts, where)
            answers[custom_id] = gens
            counts.prompt_tokens += gens[0].prompt_tokens if gens else 0
            counts.completion_tokens += sum(g.completion_tokens for g in gens)
            counts.ok.add(custom_id)
        elif error == "unknown custom_id" or custom_id is None:
            counts.unknown += 1
        else:
            counts.failed[error.split(":")[0] if error else "error"] += 1
            counts.failed_ids.add(custom_id)
            logger.info("batch line %s failed: %s", custom_id[:12], error)
    return answers


def store_answers(answers: dict[str, list[Generation]], cache: RequestCache) -> None:
    """Put answers read by :func:`read_answers` into the request cache."""
    for custom_id, gens in answers.items():
        cache.put(custom_id, gens)


def import_lines(lines: Iterable[str], requests: dict[str, ChatRequest], cache: RequestCache,
                 counts: ImportCounts | None = None, source: str = "results") -> ImportCounts:
    """:func:`read_answers` then :func:`store_answers`: nothing is stored if a line conflicts."""
    counts = counts or ImportCounts()
    store_answers(read_answers(lines, requests, counts, source), cache)
    return counts
