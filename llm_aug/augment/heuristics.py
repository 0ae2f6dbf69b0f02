"""Cheap per-text signals of bad generations: wrong language, loops, LLM boilerplate, advice.

Each function returns a number (higher = worse, except :func:`cjk_ratio`) so the
filters can record it as a score and the thresholds stay in the filter config.
Pattern lists were checked against the 999 real SOS-1K train+val posts: the
boilerplate patterns match none of them, and the counselling score reaches the default
threshold (3) on none of them, although real comments do sometimes give advice
("别想了", "好好活着") -- which is why single weak phrases never reject on their own.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LETTER = re.compile(r"[^\W\d_]")  # any script's letters; CJK ideographs count as letters

# Signs that the text is a chat reply or a serialised record, not a post.
BOILERPLATE_PATTERNS: tuple[str, ...] = (
    r"(?<![a-z])(assistant|user|system)(?![a-z])", r"AI\s*助手", r"人工智能", r"语言模型",
    r"作为\s*(一个|一名)?\s*(AI|人工智能|助手|模型)", r"我是\s*(一个|一名)?\s*(AI|人工智能|助手)",
    r"(用户|助手|回复|回答|输出|帖子|示例|样例|例子|微博内容|评论内容)\s*[:：]",
    r"\"\s*(label|text|role|content|posts?|level|risk|comment|mylabel)\s*\"\s*:", r"[{}]", r"```",
    r"以下是", r"(风险)?等级\s*[:：]?\s*\d", r"\blevel\s*\d", r"风险等级",
    r"(抱歉|对不起|很遗憾)[，,]?\s*我?(无法|不能)(提供|生成|协助|满足|回答)", r"无法(生成|协助)", r"^\s*(\d{1,2}|[一二三四五六七八九十])\s*[.、)）:：]\s*\D",
)
_BOILERPLATE = [re.compile(p, re.IGNORECASE) for p in BOILERPLATE_PATTERNS]

# (pattern, weight): advice addressed to someone else, or hotline/therapy referrals.
COUNSELLING_PATTERNS: tuple[tuple[str, float], ...] = (
    (r"寻求(专业|心理)(的)?(帮助|支持)", 3), (r"寻求帮助", 1), (r"专业(人士|人员|的)?(帮助|支持|机构)", 3),
    (r"(心理|援助|求助|危机|干预)热线", 3), (r"拨打", 2), (r"心理(咨询师|咨询|医生|健康)", 1),
    (r"你(并)?不(是)?孤单", 2), (r"你(应该|需要|可以|值得)", 1), (r"建议你", 2),
    (r"(请|一定要)(相信|珍惜|照顾|爱护)", 2), (r"相信自己", 1), (r"珍惜(生命|自己)", 2),
    (r"(一切|都|总)会好起来", 1), (r"(不要|别)放弃", 1), (r"我们(都)?(在|会)(这里|陪)", 2),
    (r"加油", 0.5), (r"和(家人|朋友|身边的人)(聊聊|谈谈|倾诉)", 2), (r"试着(去)?", 1),
    (r"身边(的人|的朋友|的亲人)", 0.5), (r"积极(的|地)?(心态|面对)", 1),
)
_COUNSELLING = [(re.compile(p), w) for p, w in COUNSELLING_PATTERNS]


def cjk_ratio(text: str) -> float:
    """Share of the text's letters that are CJK ideographs (digits, punctuation, emoji ignored)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for c in letters if _CJK.match(c)) / len(letters)


def max_ngram_repeats(text: str, n: int = 4) -> tuple[int, str]:
    """Count of the most frequent character ``n``-gram and the n-gram itself.

    N-grams made of one repeated character ("哈哈哈哈", "啊啊啊啊") are ignored: real
    posts use them for emphasis, a generation loop repeats a phrase.
    """
    s = "".join(text.split())
    grams = Counter(s[i : i + n] for i in range(len(s) - n + 1))
    grams = Counter({g: c for g, c in grams.items() if len(set(g)) > 1})
    if not grams:
        return 0, ""
    gram, count = grams.most_common(1)[0]
    return count, gram


def compression_ratio(text: str) -> float:
    """zlib-compressed size over UTF-8 size; low means repetitive (meaningful on long texts)."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else 1.0


def boilerplate_hits(text: str) -> list[str]:
    """The boilerplate patterns that match ``text`` (empty for a clean post)."""
    return [p.pattern for p in _BOILERPLATE if p.search(text)]


def counselling_score(text: str) -> float:
    """Weighted count of advice/referral phrases; each occurrence adds its weight."""
    return float(sum(w * len(p.findall(text)) for p, w in _COUNSELLING))
