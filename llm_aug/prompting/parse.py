"""Read labels and post lists out of free-form LLM replies.

``parse_label`` tries, in order, and stops at the first step that finds a label cue:

1. JSON (fenced or inline) with a label-like key (``label``, ``level``, ``等级``...);
2. a Markdown table with a level column (or a ``| 等级 | 7 |`` key/value row);
3. an explicit cue: ``等级：7``, ``风险等级为七级``, ``Level 7``, ``答案: 7``;
4. a level suffix: ``第7级``, ``7级``, ``十级``;
5. the reply is just a number, or holds exactly one Arabic number that is a valid label
   (other numbers outside the scheme, such as years, are ignored at this step only);
6. exactly one level name of the scheme (``高风险``, ``strong suicidal wish``).

Within a step, if the cues name different labels the reply is ambiguous and the label
is None; a cued label outside the scheme gives None too. The parser never guesses a
default class. Ranges such as ``0-10级`` and denominators such as ``7/10`` are removed
first; reasoning in ``<think>...</think>`` is ignored. Chinese numerals up to 99 and
full-width digits are read.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from llm_aug.data.schemes import LabelScheme
from llm_aug.prompting._replies import find_key, json_values, strip_reasoning
from llm_aug.prompting.postlist import parse_post_list

__all__ = ["ParseResult", "cn_to_int", "parse_label", "parse_post_list", "strip_reasoning"]

logger = logging.getLogger(__name__)

_CN = "零〇一二两三四五六七八九十"
_CN_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
# A Chinese numeral counts only before 级 or a non-CJK character ("等级一般" is not 1).
_NUM = rf"((?<![\d.])\d+(?![\d]|\.\d)|[{_CN}]+(?=级|[^\u4e00-\u9fff]|$))"
_ARABIC = re.compile(r"(?<![\d.])\d+(?![\d]|\.\d)")
_KEYWORDS = (r"自杀风险等级|风险等级|风险级别|等级|级别|评级|分级|评分|答案|结果"
             r"|risk level|level|label|score|rating|answer")
_CONNECT = r"(?:应该|应|可能|判定|评定|评估|判断|确定|最终)?\s*(?:是|为)?"
_CUE_RE = re.compile(rf"(?:{_KEYWORDS})[\s\"'“”]*{_CONNECT}[\s\"'“”]*[:：=]?[\s\"'“”]*(?:第\s*)?{_NUM}")
_SUFFIX_RE = re.compile(rf"(?:第\s*{_NUM}\s*级|{_NUM}\s*级)")
_RANGE_RE = re.compile(rf"{_NUM}\s*级?\s*(?:-|~|–|—|到|至)\s*{_NUM}")
_DENOM_RE = re.compile(r"(\d+)\s*/\s*\d+")
_BARE_RE = re.compile(rf"^[^\w]*(?:第\s*)?{_NUM}\s*级?[^\w]*$")
_LEAD_RE = re.compile(rf"^[^\w]*(?:第\s*)?{_NUM}")
_LABEL_KEYS = ("label", "level", "risk_level", "risk", "等级", "级别", "风险等级", "自杀风险等级",
               "prediction", "answer", "score")
_REASON_KEYS = ("reason", "理由", "原因", "explanation", "rationale", "analysis", "分析")
_REASON_RE = re.compile(r"(?:理由|原因|依据|reason)\s*[:：]\s*(.+)", re.DOTALL | re.IGNORECASE)
_TABLE_HEAD_RE = re.compile(r"等级|级别|评级|分级|level|label", re.IGNORECASE)


@dataclass(frozen=True)
class ParseResult:
    """A parsed label (None when absent, ambiguous or outside the scheme) and how it was read.

    ``method`` is one of json, table, cue, suffix, bare, single_number, name (found), or
    empty, no_label, ambiguous, out_of_scheme (label None).
    """

    label: int | None
    reason: str | None
    method: str


def cn_to_int(text: str) -> int | None:
    """Arabic or Chinese numeral (0-99) to int; None when it is not one."""
    if text.isdecimal():
        return int(text)
    if text in _CN_DIGIT:
        return _CN_DIGIT[text]
    tens, sep, ones = text.partition("十")
    if not sep or (tens and tens not in _CN_DIGIT) or (ones and ones not in _CN_DIGIT):
        return None
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0)


def _decide(values: list[int | None], scheme: LabelScheme, method: str, reason: str | None) -> ParseResult:
    distinct = set(values)
    if len(distinct) > 1:
        logger.debug("ambiguous %s labels: %s", method, sorted(distinct, key=str))
        return ParseResult(None, reason, "ambiguous")
    (value,) = distinct
    if value is None or value not in scheme:
        return ParseResult(None, reason, "out_of_scheme")
    return ParseResult(value, reason, method)


def _scalar(value: Any) -> int | None:
    """A label from a JSON value or a table cell: 7, 7.0, "7", "7级", "七", "level 7"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    for regex in (_BARE_RE, _CUE_RE, _SUFFIX_RE, _LEAD_RE):
        nums = [g for m in regex.finditer(text) for g in m.groups() if g]
        if nums:
            parsed = {cn_to_int(n) for n in nums}
            return parsed.pop() if len(parsed) == 1 else None
    return None


def _from_json(text: str, scheme: LabelScheme) -> ParseResult | None:
    labels, reason = [], None
    for value in json_values(text):
        found = find_key(value, _LABEL_KEYS)
        labels.extend(_scalar(v) for v in found)
        reasons = find_key(value, _REASON_KEYS)
        if found and reasons and reason is None:
            reason = str(reasons[0])
    return _decide(labels, scheme, "json", reason) if labels else None


def _table_cells(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"[|:\-\s]+", line):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _from_table(text: str, scheme: LabelScheme) -> ParseResult | None:
    rows = _table_cells(text)
    if not rows:
        return None
    cols = [i for i, cell in enumerate(rows[0]) if _TABLE_HEAD_RE.search(cell)]
    header_is_data = any(_scalar(c) is not None for c in rows[0])
    if cols and not header_is_data:
        values = [_scalar(r[cols[0]]) for r in rows[1:] if len(r) > cols[0]]
    else:  # key/value rows: | 风险等级 | 7 |
        values = [_scalar(r[i + 1]) for r in rows for i, cell in enumerate(r[:-1])
                  if _TABLE_HEAD_RE.search(cell)]
    values = [v for v in values if v is not None]
    return _decide(values, scheme, "table", None) if values else None


def _from_text(text: str, scheme: LabelScheme, reason: str | None) -> ParseResult:
    for regex, method in ((_CUE_RE, "cue"), (_SUFFIX_RE, "suffix")):
        nums = [g for m in regex.finditer(text) for g in m.groups() if g]
        if nums:
            return _decide([cn_to_int(n) for n in nums], scheme, method, reason)
    bare = _BARE_RE.match(text)
    if bare:
        return _decide([cn_to_int(next(g for g in bare.groups() if g))], scheme, "bare", reason)
    valid = {int(n) for n in _ARABIC.findall(text)} & set(scheme.labels)
    if valid:
        return _decide(sorted(valid), scheme, "single_number", reason)
    if _ARABIC.search(text):
        return ParseResult(None, reason, "out_of_scheme")
    return _from_names(text, scheme, reason)


def _from_names(text: str, scheme: LabelScheme, reason: str | None) -> ParseResult:
    spans: list[tuple[int, int, int]] = []
    names = sorted(((n.lower(), lv.id) for lv in scheme.levels for n in (lv.name_zh, lv.name_en)),
                   key=lambda p: -len(p[0]))
    for name, label in names:  # longest first, so "strong suicidal wish" beats "suicidal wish"
        for m in re.finditer(re.escape(name), text):
            if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                spans.append((m.start(), m.end(), label))
    if not spans:
        return ParseResult(None, reason, "no_label")
    return _decide([label for _, _, label in spans], scheme, "name", reason)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", strip_reasoning(text)).lower()
    text = text.replace("*", "").replace("`", "").replace("#", "")
    text = _RANGE_RE.sub(" ", text)
    return _DENOM_RE.sub(r"\1", text).strip()


def parse_label(text: str | None, scheme: LabelScheme) -> ParseResult:
    """The label an LLM reply gives for ``scheme`` (see the module docstring for the rules)."""
    if not text or not text.strip():
        return ParseResult(None, None, "empty")
    raw = unicodedata.normalize("NFKC", strip_reasoning(text))
    result = _from_json(raw, scheme)
    if result is not None:
        return result
    table = _from_table(raw, scheme)
    if table is not None and table.method != "ambiguous":
        return table
    if table is not None:  # e.g. a table restating all levels: read the prose around it
        raw = "\n".join(ln for ln in raw.splitlines() if not ln.strip().startswith("|"))
    match = _REASON_RE.search(raw)
    reason = match.group(1).strip() if match else None
    return _from_text(_clean(raw), scheme, reason)
