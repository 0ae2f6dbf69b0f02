"""Helpers shared by the reply parsers: reasoning blocks, fenced code, JSON scanning."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

FENCE_RE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)


def strip_reasoning(text: str) -> str:
    """Drop a reasoning model's ``<think>...</think>`` preamble (open tag optional)."""
    return text.rsplit("</think>", 1)[1] if "</think>" in text else text


def json_values(text: str) -> Iterator[Any]:
    """Every JSON object or array found in fenced blocks, else anywhere in ``text``."""
    decoder = json.JSONDecoder()
    sources = [m.group(1) for m in FENCE_RE.finditer(text)] or [text]
    for source in sources:
        pos = 0
        while True:
            starts = [i for i in (source.find("{", pos), source.find("[", pos)) if i >= 0]
            if not starts:
                break
            start = min(starts)
            try:
                value, end = decoder.raw_decode(source, start)
            except json.JSONDecodeError:
                pos = start + 1
                continue
            yield value
            pos = end


def find_key(obj: Any, keys: tuple[str, ...], depth: int = 0) -> list[Any]:
    """Values under any of ``keys`` (case-insensitive) in dicts, lists, one level deep."""
    if depth > 2:
        return []
    if isinstance(obj, list):
        return [v for item in obj for v in find_key(item, keys, depth + 1)]
    if not isinstance(obj, dict):
        return []
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        if key in lowered:
            return [lowered[key]]
    return [v for item in obj.values() if isinstance(item, (dict, list))
            for v in find_key(item, keys, depth + 1)]
