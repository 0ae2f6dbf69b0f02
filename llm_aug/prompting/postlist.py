"""Split a generation reply into posts (JSON list, numbered or bulleted list, lines)."""

from __future__ import annotations

import json
import re

from llm_aug.prompting._replies import FENCE_RE, find_key, strip_reasoning

_ITEM_RE = re.compile(r"^\s*(?:[(（]\s*[0-9０-９]{1,3}\s*[)）]|[0-9０-９]{1,3}\s*[.、．)）:：](?![0-9])"
                      r"|[①-⑳]|[-*•·●▪]|第\s*[0-9０-９一二三四五六七八九十]{1,3}\s*条\s*[:：]?)\s*")
_LABEL_PREFIX_RE = re.compile(r"^(?:评论|微博|帖子|示例|post|comment)\s*[0-9０-９]{0,3}\s*[:：]\s*", re.IGNORECASE)
# Narrow on purpose: "希望明天不要醒来" or "如果你看到这条…" are posts, not commentary.
_COMMENTARY_RE = re.compile(
    r"^(?:以下是|以下为|下面是|这里是|以上(?:是|就是|为|内容|评论)|希望(?:这些|以上|对你|对您|能帮|有帮助)"
    r"|注[:：]|注意[:：]|说明[:：]|备注|请注意|如需|如果(?:你|您)(?:需要|还需要|想要|有其他)"
    r"|(?:好的|当然)[，,。!！\s]*(?:以下|下面|这是|这里)|here (?:are|is)|sure[,!]|i hope|note:)", re.IGNORECASE)
_SKIP_RE = re.compile(r"^\s*(?:#+\s.*|```.*|[-*_=]{3,}|[\[\]{}],?)\s*$")
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "'": "'", "‘": "’"}
_TRAILING_LABEL_RE = re.compile(r"\s*[(（]\s*(?:等级|级别|level)?\s*[:：]?\s*\d{1,2}\s*级?\s*[)）]\s*$", re.IGNORECASE)
_TEXT_KEYS = ("text", "post", "content", "comment", "评论", "内容")


def _unquote(text: str) -> str:
    text = text.strip()
    if text[:1] in _QUOTES and re.search(r"[\"”」』'’]\s*[,，]?$", text):
        text = re.sub(r"\s*[,，]$", "", text)
        if text.endswith(_QUOTES[text[0]]) and len(text) >= 2:
            text = text[1:-1].strip()
    return text


def _clean_post(text: str) -> str:
    text = _LABEL_PREFIX_RE.sub("", text.replace("**", "").strip())
    return _TRAILING_LABEL_RE.sub("", _unquote(text)).strip()


def _posts_from_json(text: str) -> list[str] | None:
    """Strings of the first JSON list (or object holding a list) that starts a line."""
    decoder = json.JSONDecoder()
    fenced = [m.group(1) for m in FENCE_RE.finditer(text)]
    for source in fenced or [text]:
        for m in re.finditer(r"^[ \t]*[\[{]", source, re.MULTILINE):
            try:
                value, _ = decoder.raw_decode(source, m.end() - 1)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                value = next((v for v in value.values() if isinstance(v, list)), None)
            if not isinstance(value, list):
                continue
            posts = [v if isinstance(v, str) else next(iter(find_key(v, _TEXT_KEYS)), None)
                     for v in value]
            posts = [p for p in posts if isinstance(p, str)]
            if posts:
                return posts
    return None


def _join(head: str, tail: str) -> str:
    # Chinese continuation lines join without a space; Latin words need one.
    sep = " " if head[-1:].isascii() and tail[:1].isascii() else ""
    return head + sep + tail


def _posts_from_lines(text: str) -> list[str]:
    # "**1.** text": markdown bold would otherwise hide the numbering.
    lines = [ln.replace("**", "") for ln in text.splitlines() if not _SKIP_RE.match(ln)]
    if not any(_ITEM_RE.match(ln) for ln in lines if ln.strip()):
        return [ln for ln in lines if ln.strip() and not _is_commentary(ln)]
    items: list[str] = []
    open_item = False  # a continuation line joins the item above unless a blank line intervenes
    for line in lines:
        match = _ITEM_RE.match(line)
        if match:
            items.append(line[match.end():].strip())
            open_item = True
        elif not line.strip() or _is_commentary(line):
            open_item = False
        elif open_item:
            items[-1] = _join(items[-1], line.strip())
    return items


def _is_commentary(line: str) -> bool:
    stripped = line.strip().replace("**", "")
    return bool(_COMMENTARY_RE.match(stripped)) or stripped.endswith((":", "："))


def parse_post_list(text: str | None) -> list[str]:
    """Posts in a generation reply: a JSON list (or object with a list), a numbered or
    bulleted list (``1.`` ``1、`` ``(1)`` ``①`` ``-``), or one post per line.

    Numbering, ``评论1：`` prefixes, surrounding quotes, trailing ``（7级）`` tags and
    commentary lines (``以下是…``, ``希望这些…``, lines ending in a colon) are removed.
    """
    if not text or not text.strip():
        return []
    text = strip_reasoning(text)
    posts = _posts_from_json(text)
    if posts is None:
        posts = _posts_from_lines(text)
    return [p for p in (_clean_post(x) for x in posts) if p]
