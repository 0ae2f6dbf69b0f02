"""Text normalisation: scraped Weibo comments (HTML remnants, whitespace) and match keys.

:func:`normalize_text` cleans what is stored; :func:`normalize_for_match` is the key every
comparison of texts uses (exact-copy and split-overlap checks, the n-gram similarity of
``llm_aug.augment``), so that punctuation, spacing, case and emoji edits do not hide a copy.
"""

from __future__ import annotations

import html
import re

from pydantic import BaseModel, ConfigDict

_TAG = re.compile(r"<[^>]{0,500}>")
# Weibo's picture link: <a ...><i ...>?</i>评论配图</a>; drop it whole, caption included.
_IMAGE_LINK = re.compile(r"<a\b[^>]*>(?:(?!</a>).){0,300}?评论配图\s*</a>", re.IGNORECASE | re.S)
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


class NormalizeConfig(BaseModel):
    """Which clean-ups to apply; recorded in every manifest."""

    model_config = ConfigDict(extra="forbid")
    unescape_html: bool = True
    drop_image_links: bool = True
    strip_tags: bool = True
    collapse_whitespace: bool = True


def normalize_text(text: str, config: NormalizeConfig | None = None) -> str:
    """Return ``text`` with HTML entities, tags and runs of whitespace cleaned up."""
    cfg = config or NormalizeConfig()
    if cfg.drop_image_links:
        text = _IMAGE_LINK.sub(" ", text)
    if cfg.strip_tags:
        text = _TAG.sub(" ", text)
    if cfg.unescape_html:
        # &nbsp; unescapes to U+00A0, which the whitespace pass then folds.
        text = html.unescape(text)
    if cfg.collapse_whitespace:
        text = _WS.sub(" ", text.replace("\u00a0", " ").replace("\u3000", " ")).strip()
    return text


def normalize_for_match(text: str) -> str:
    """Keep letters and digits only (CJK included), lower-cased."""
    return _NON_WORD.sub("", text.lower())
