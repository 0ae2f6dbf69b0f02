"""Import Batch API output lines into the request cache.

An output line (OpenAI Batch API, and ``vllm run-batch``) is
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``, the
body a chat completion. It is parsed with the live calls' parser and its samples stored
under ``custom_id`` (the request's cache key): rerunning the command then answers the
request from the cache exactly as after a live run. Failed or missing lines are left
out of the cache, so the rerun asks for them again (live or as a new batch).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from llm_aug.llm.backends.base import check_generations
from llm_aug.llm.backends.openai_compat import parse_completion
from llm_aug.llm.batch import BatchCycle
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
    prompt_tokens: int = 0  # what the batches spent: the rerun's cache hits count none
    completion_tokens: int = 0


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


def import_lines(lines: Iterable[str], requests: dict[str, ChatRequest], cache: RequestCache,
                 counts: ImportCounts | None = None) -> ImportCounts:
    """Store every answered line's samples in ``cache`` (first answer wins); count the rest."""
    counts = counts or ImportCounts()
    for line in lines:
        if not line.strip():
            continue
        custom_id, gens, error = parse_output_line(line, requests)
        if gens is not None and custom_id is not None:
            cache.put(custom_id, gens)
            if custom_id not in counts.ok:
                counts.prompt_tokens += gens[0].prompt_tokens if gens else 0
                counts.completion_tokens += sum(g.completion_tokens for g in gens)
            counts.ok.add(custom_id)
        elif error == "unknown custom_id" or custom_id is None:
            counts.unknown += 1
        else:
            counts.failed[error.split(":")[0] if error else "error"] += 1
            counts.failed_ids.add(custom_id)
            logger.info("batch line %s failed: %s", custom_id[:12], error)
    return counts
