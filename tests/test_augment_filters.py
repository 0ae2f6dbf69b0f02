"""Filters on crafted synthetic posts: each bad kind is caught by its filter, a normal post passes."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from llm_aug.augment import dedup as D
from llm_aug.augment import nearcopy, spans, textsim
from llm_aug.augment.filters import (
    FILTER_NAMES,
    FilterConfig,
    LeakageConfig,
    LengthConfig,
    apply_filters,
    label_tolerance,
    length_bounds,
    rejection_counts,
)
from llm_aug.augment.rows import SynthRow
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import scheme_for_task

TRAIN_POSTS = [
    ("和朋友吵架了，心情很差，但是睡一觉应该就好了吧。", 0),
    ("今天又失眠了，翻来覆去睡不着，脑子里全是乱七八糟的事情。", 1),
    ("工作上被领导骂了一顿，回家路上一直在哭，感觉自己什么都做不好。", 2),
    ("爸妈总是吵架，家里一点温暖都没有，我每天都在假装开心，心里真的很痛苦。", 3),
    ("每天都很累，不知道活着的意义是什么，真的好想消失，想离开这个世界。", 4),
    ("好想死啊，可是又不知道该怎么做，每天就这样熬着，太难受了。", 5),
    ("我在网上查了很多种方法，想找一种不那么痛苦的，已经开始计划了。", 6),
    ("我已经想好了，等这个月工资发了就去买安眠药，然后安安静静地走。", 7),
    ("下个月月底之前我会去烧炭，东西已经陆续买齐了，就差最后的勇气。", 8),
    ("下周五是我的生日，那天我就从公司顶楼跳下去，遗书已经写好了。", 9),
    ("药已经吃下去了，现在头好晕，对不起所有人，再见了这个世界。", 10),
]
TRAIN = Dataset([Row(f"t{i}", t, lv) for i, (t, lv) in enumerate(TRAIN_POSTS)])
VAL = Dataset([Row("v0", "走之前要对你取关了，我们约定在另一个世界见面，好吗，这是我最后一条微博了。", 10),
               Row("v1", "考试又没考好，被老师当着全班同学的面批评，好丢脸，不想去学校了。", 2)])
NORMAL = "最近总是一个人躲在房间里哭，觉得自己很没用，对什么都提不起兴趣，好难受。"
CFG = FilterConfig(length=LengthConfig(min_chars=5, max_chars=140))


def synth(text: str, label: int = 3, rid: str | None = None, **kw) -> SynthRow:
    return SynthRow(id=rid or f"s{abs(hash(text)) % 10**8}", text=text, label=label, method="llm", **kw)


def run(*rows: SynthRow, relabel=None, config: FilterConfig = CFG, protect=(VAL,)):
    return apply_filters(list(rows), config, TRAIN, protect, relabel)


def verdict(row: SynthRow, **kw) -> str | None:
    kept, rejected = run(row, **kw)
    assert len(kept) + len(rejected) == 1
    return rejected[0].rejected_by if rejected else None


def test_normal_first_person_post_passes_every_filter():
    row = synth(NORMAL, exemplar_ids=["t3"])
    kept, rejected = run(row, relabel=lambda texts: [3] * len(texts))
    assert rejected == [] and len(kept) == 1
    assert set(kept[0].scores) == set(FILTER_NAMES)
    assert row.scores == {}  # inputs untouched


@pytest.mark.parametrize("text, expected", [
    ("好累", "length"),
    ("I feel so sad today and I just want to cry all night long.", "language"),
    ("作为AI助手，我理解你现在的感受，请不要太难过，明天会更好的。", "boilerplate"),
    ('{"role": "AI助手", "text": "' + "相信自己" * 20 + '"}', "boilerplate"),
    ("1. 今天又是很难过的一天，我一个人在房间里坐了很久很久。", "boilerplate"),
    ("相信自己" * 20, "loop"),
    ("我好累我好累我好累我好累我好累我好累，真的不想再继续了。", "loop"),
    ("听到你这么难过我很心疼。你应该试着和家人朋友聊聊，建议你寻求专业帮助，也可以拨打心理援助热线。", "counselling"),
    (NORMAL, None),
])
def test_each_bad_kind_is_caught_by_its_filter(text, expected):
    assert verdict(synth(text)) == expected


def test_counselling_needs_more_than_one_weak_phrase():
    assert verdict(synth("加油吧，我也不知道还能撑多久，每天都好难受，真的好想哭。")) is None


def test_exact_duplicates_of_training_and_of_each_other():
    kept, rejected = run(synth(TRAIN_POSTS[2][0], 2), synth(NORMAL, rid="a"), synth(NORMAL + "！！", rid="b"))
    assert [r.id for r in kept] == ["a"]
    assert [r.rejected_by for r in rejected] == ["exact_dup", "exact_dup"]
    assert "training post t2" in rejected[0].reject_reason and "synthetic row a" in rejected[1].reject_reason


def test_near_duplicate_one_char_changed():
    text = TRAIN_POSTS[3][0].replace("温暖", "温馨")
    assert verdict(synth(text)) == "near_dup_train"
    kept, rejected = run(synth(NORMAL, rid="first"), synth(NORMAL.replace("房间", "屋子"), rid="second"))
    assert [r.id for r in kept] == ["first"] and rejected[0].rejected_by == "near_dup_synth"


def test_copied_exemplar_caught_below_the_near_dup_threshold():
    copy = "我已经想好了，等这个月工资发了就去买安眠药，然后一个人安静地离开。"
    score = textsim.jaccard(copy, TRAIN_POSTS[7][0])
    assert CFG.exemplar_copy.jaccard <= score < CFG.near_dup_train.jaccard  # not a near-dup of training ...
    assert verdict(synth(copy, 7, exemplar_ids=["t7"])) == "exemplar_copy"  # ... but a copy of its exemplar
    assert verdict(synth(copy, 7, exemplar_ids=["t1"])) is None


def test_leaked_val_post_slightly_edited_is_rejected():
    edited = VAL.rows[0].text.replace("好吗", "好不好").replace("微博", "动态")
    assert verdict(synth(edited, 10)) == "leakage"
    embedded = "今天很平静。" + VAL.rows[1].text + "算了，就这样吧，明天再说。"
    assert verdict(synth(embedded, 2)) == "leakage"  # containment, not Jaccard
    assert verdict(synth(edited, 10), protect=()) is None  # nothing protected, nothing caught


def test_leakage_threshold_is_stricter_than_near_dup():
    a = "我真的好想离开这个世界，每天醒来都觉得好累，不想再面对任何人了。"
    b = "我真的好想离开这个世界，每天醒来都觉得好累，谁也不想再理我了。"
    j = textsim.jaccard(a, b)
    assert CFG.leakage.jaccard <= j < CFG.near_dup_train.jaccard
    other = Dataset([Row("x", b, 4)])
    assert apply_filters([synth(a, 4)], CFG, TRAIN, [other])[1][0].rejected_by == "leakage"
    assert apply_filters([synth(a, 4)], CFG, Dataset(TRAIN.rows + other.rows), ())[1] == []


def test_label_consistency_with_fake_relabel():
    rows = [synth(NORMAL, 3, rid="ok"), synth("东西都准备好了，今晚等家里人睡着以后就去天台，不想再拖了。", 9, rid="wrong"),
            synth("不知道为什么，最近总是想起以前的事情，越想越难过。", 2, rid="none")]
    preds = {"ok": 4, "wrong": 3, "none": None}
    kept, rejected = run(*rows, relabel=lambda texts: [preds[r.id] for r in rows if r.text in texts])
    assert [r.id for r in kept] == ["ok"] and kept[0].scores["label"] == 4
    reasons = {r.id: r.reject_reason for r in rejected}
    assert "relabelled 3, target 9" in reasons["wrong"] and "no label" in reasons["none"]


def test_label_tolerance_defaults():
    assert label_tolerance(Dataset(TRAIN.rows, scheme=scheme_for_task("fine")), CFG.label) == 1
    assert label_tolerance(Dataset(TRAIN.rows, scheme=scheme_for_task("binary")), CFG.label) == 0
    assert label_tolerance(Dataset([Row("a", "x", 0), Row("b", "y", 1)]), CFG.label) == 0


def test_relabel_must_answer_every_text():
    with pytest.raises(ValueError, match="relabel returned"):
        run(synth(NORMAL), relabel=lambda texts: [])


def test_length_bounds_from_percentiles():
    data = Dataset([Row(str(n), "字" * n, 0) for n in range(1, 101)])
    assert length_bounds(data, LengthConfig()) == (2, 99)
    assert length_bounds(data, LengthConfig(percentiles=(0, 100))) == (1, 100)
    assert length_bounds(data, LengthConfig(min_chars=10)) == (10, 99)


def test_order_counts_and_disabled_filters():
    rows = [synth("好累", rid="short"), synth("相信自己" * 20, rid="loop"), synth(NORMAL, rid="ok")]
    _, rejected = run(*rows)
    counts = rejection_counts(rejected)
    assert list(counts) == list(FILTER_NAMES)
    assert counts["length"] == 1 and counts["loop"] == 1 and sum(counts.values()) == 2
    cfg = CFG.model_copy(deep=True)
    cfg.loop.enabled = False
    cfg.counselling.enabled = False  # "相信自己" x20 would be advice too
    assert [r.id for r in apply_filters(rows, cfg, TRAIN, [VAL])[0]] == ["loop", "ok"]
    with pytest.raises(ValueError):
        FilterConfig.model_validate({"loop": {"max_repeat": 3}})  # typo: extra="forbid"


def test_synthrow_text_is_one_clean_line():
    assert synth("第一行\n第二行\t第三行  ").text == "第一行 第二行 第三行"


def test_exact_similarity_matches_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(textsim, "_CELLS", 50)  # force many chunks
    rng = random.Random(0)
    alphabet = "我你他好累想死活不要哭笑天家人"
    ref = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 25))) for _ in range(40)]
    qs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25))) for _ in range(60)]
    best = textsim.ShingleIndex(ref).best(qs, min_size=4)
    for i, q in enumerate(qs):
        assert best.jaccard[i] == pytest.approx(max(textsim.jaccard(q, r) for r in ref), abs=1e-6)
        big = [r for r in ref if len(textsim.shingles(r)) >= 4] if len(textsim.shingles(q)) >= 4 else []
        assert best.containment[i] == pytest.approx(max([textsim.containment(q, r) for r in big], default=0), abs=1e-6)
    assert np.all(best.jaccard_arg >= 0)


# --- leakage: near-copies of protected posts (issue 11) -------------------------------------

PROTECTED = Dataset([Row(f"p{i}", t, 3) for i, t in enumerate([
    "走之前要对你取关了，我们约定在另一个世界见面，好吗，这是我最后一条微博了。",
    "考试又没考好，被老师当着全班同学的面批评，好丢脸，不想去学校了。",
    "家在十二楼，每次走到窗边都想跳下去，可是一想到爸妈还在等我回家就又忍住了。",
    "我已经把这个月的工资都取出来了，准备留给妈妈，剩下的安眠药也攒够了，就等周末。",
    "我也想去死一死",
])])
_POOL = "天地山水风云花草木日月星辰春夏秋冬东南西北红黄蓝绿鱼鸟虫马牛羊猫狗桌椅门窗书纸墨茶饭菜米面"
_LETTER = re.compile(r"[^\W_]")


def edited(text: str, rate: float, seed: int) -> str:
    """``rate`` of the letters changed (3 substituted, 1 inserted, 1 deleted in every 5)."""
    rng = random.Random(seed)
    chars = list(text)
    letters = [i for i, ch in enumerate(chars) if _LETTER.match(ch)]
    for k, i in enumerate(sorted(rng.sample(letters, max(1, round(rate * len(letters)))), reverse=True)):
        if k % 5 < 3:
            chars[i] = rng.choice(_POOL)
        elif k % 5 == 3:
            chars.insert(i, rng.choice(_POOL))
        else:
            del chars[i]
    return "".join(chars)


def first_half(text: str) -> str:
    letters = [i for i, ch in enumerate(text) if _LETTER.match(ch)]
    return text[: letters[(len(letters) + 1) // 2 - 1] + 1]


LONG = [r.text for r in PROTECTED.rows[:4]]
PERTURBED = {
    "10% edited": [edited(t, 0.10, seed) for t in LONG for seed in range(5)],
    "20% edited": [edited(t, 0.20, seed) for t in LONG for seed in range(5)],
    "half verbatim": [first_half(t) + tail for t in LONG for tail in ("今天的天气还不错，晚上吃了一碗面。", NORMAL)],
    "wrapped": [f"{a}{t}{b}" for t in LONG for a, b in (("说真的，", "唉。"), ("我也是：", "有人懂吗？"))],
    "short post edited": ["我也有点想去死一死", "我也是想去死一死啊"],
}
# Real-looking posts that share stock phrases (想去死一死, 离开这个世界, 每次走到窗边) with protected
# posts without copying one.
DISTINCT = [
    "我很想离开这个世界，可是我存在太多羁绊了，爸妈只有我一个孩子。",
    "每次走到窗边我都会发呆很久，外面的世界和我没有关系。",
    "好想离开这个世界，活着太累了，每天醒来都不想睁开眼睛。",
    "这个月的工资又被扣了，房租都交不起，真的不知道该怎么办。",
    "想去死一死的念头又冒出来了，今晚大概又睡不着。",
    "被老师批评的时候全班都在笑，我一句话都说不出来。",
    NORMAL,
]


@pytest.mark.parametrize("kind", sorted(PERTURBED))
def test_every_kind_of_near_copy_of_a_protected_post_is_leakage(kind):
    kept, rejected = apply_filters([synth(t, 3, rid=f"c{i}") for i, t in enumerate(PERTURBED[kind])],
                                   CFG, TRAIN, [PROTECTED])
    assert [r.text for r in kept] == []
    assert {r.rejected_by for r in rejected} == {"leakage"}
    for r in rejected:  # the reason names the protected post; the score is kept
        assert re.search(r"protected post p\d", r.reject_reason) and r.scores["leakage"] > 0


def test_distinct_posts_sharing_stock_phrases_are_not_leakage():
    kept, rejected = apply_filters([synth(t, 3, rid=f"d{i}") for i, t in enumerate(DISTINCT)],
                                   CFG, TRAIN, [PROTECTED])
    assert [(r.text, r.reject_reason) for r in rejected] == []
    assert all(r.scores["leakage"] < 1 for r in kept)


def test_leakage_reasons_name_the_rule_and_share():
    wrapped = "说真的，" + LONG[1] + "唉。"
    (score, reason), = D.leakage_verdicts([wrapped], PROTECTED.rows)
    assert reason == "100% of protected post p1 reappears (28 of 28 chars)" and score == 1.0
    half = first_half(LONG[0]) + NORMAL
    (_, reason), = D.leakage_verdicts([half], PROTECTED.rows)
    assert reason.startswith("5") and "of protected post p0 reappears" in reason
    (_, reason), = D.leakage_verdicts(["我也有点想去死一死"], PROTECTED.rows)
    assert reason == "edit similarity 0.78 with protected post p4 (short post)"
    assert D.leakage_verdicts(["今天天气很好。"], PROTECTED.rows) == [(0.0, None)]


def test_leakage_config_rejects_the_old_containment_keys():
    with pytest.raises(ValueError, match="candidate_share"):
        FilterConfig.model_validate({"leakage": {"containment": 0.8}})
    loose = CFG.model_copy(update={"leakage": LeakageConfig(protected_share=1.0, candidate_share=1.0,
                                                            jaccard=1.0, edit_similarity=1.0,
                                                            span_min_chars=1000)})
    half = first_half(LONG[0]) + NORMAL
    assert apply_filters([synth(half)], loose, TRAIN, [PROTECTED])[1] == []


def test_near_copy_measures_match_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(nearcopy, "_CHUNK", 7)  # force many chunks
    rng = random.Random(1)
    alphabet = "我你他好累想死活不要哭笑天家人"
    ref = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25))) for _ in range(30)]
    qs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(40)]

    def covered(a: str, b: str) -> int:  # characters of a inside a 3-gram that also occurs in b
        grams = textsim.shingles(b)
        if len(a) < 3:
            return len(a) if a and a in grams else 0
        return sum(any(a[j:j + 3] in grams for j in range(max(0, i - 2), min(i, len(a) - 3) + 1))
                   for i in range(len(a)))

    index = nearcopy.NearCopyIndex(ref)
    pairs = {}
    for start in range(0, len(qs), 7):
        p = index._pairs(qs[start:start + 7])
        pairs.update({(start + int(r), int(c)): (cc, cp, j) for r, c, cc, cp, j
                      in zip(p.rows, p.cols, p.chars_c, p.chars_p, p.jaccard)})
    for i, q in enumerate(qs):
        for j, r in enumerate(ref):
            want = (covered(q, r), covered(r, q))
            got = pairs.get((i, j), (0, 0, 0.0))
            assert got[:2] == want, (q, r)
            assert got[2] == pytest.approx(textsim.jaccard(q, r), abs=1e-9)
    assert len(index.check(qs)) == len(qs)


def test_levenshtein_matches_dynamic_programming():
    def dp(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]

    rng = random.Random(2)
    for _ in range(2000):
        a, b = ("".join(rng.choice("ab我你c") for _ in range(rng.randint(0, 20))) for _ in range(2))
        assert nearcopy.levenshtein(a, b) == dp(a, b), (a, b)
    assert nearcopy.edit_similarity("我也想去死一死", "我也想去死一死啊！") == pytest.approx(7 / 8)


# --- leakage: verbatim spans of protected posts (issue 19) ------------------------------------

def spliced(text: str, share: float, other: str, tail: bool = False) -> str:
    """``share`` of the letters of ``text`` verbatim (its start, or its end) joined to half of ``other``."""
    letters = [i for i, ch in enumerate(text) if _LETTER.match(ch)]
    keep = round(share * len(letters))
    if tail:
        return other[:len(other) // 2] + text[letters[-keep]:]
    return text[:letters[keep - 1] + 1] + other[len(other) // 2:]


SPAN_OFF = LeakageConfig(span_min_chars=1000)  # the ratio rules only: the filter before issue 19
OTHERS = (NORMAL, TRAIN_POSTS[2][0], TRAIN_POSTS[5][0])


def test_splices_of_40_to_50_percent_of_a_protected_post_are_leakage():
    splices = [spliced(t, share, o, tail) for t in LONG for share in (0.4, 0.45, 0.5)
               for o in OTHERS for tail in (False, True)]
    missed_by_ratios = [t for t, (_, r) in zip(splices, D.leakage_verdicts(splices, PROTECTED.rows, SPAN_OFF))
                        if r is None]
    assert len(missed_by_ratios) >= len(splices) // 3  # what the issue found: the shares sit at the splice size
    kept, rejected = apply_filters([synth(t, 3, rid=f"x{i}") for i, t in enumerate(splices)],
                                   CFG, TRAIN, [PROTECTED])
    assert [r.text for r in kept] == []
    reasons = {r.text: r.reject_reason for r in rejected}
    for text in missed_by_ratios:
        assert re.fullmatch(r"leakage: \d+ chars of protected post p[0-3] reappear verbatim \(\d+% of its \d+\)",
                            reasons[text]), reasons[text]


def test_a_long_verbatim_run_is_leakage_whatever_its_share():
    long_post = "".join(PROTECTED.rows[i].text for i in (0, 2, 3))  # ~100 letters: 16 chars is ~16%
    index = nearcopy.NearCopyIndex([long_post], ["lp"])
    run = textsim.normalize_for_match(long_post)[40:56]
    (hit,) = index.check([NORMAL + run + TRAIN_POSTS[1][0]])
    (miss,) = index.check([NORMAL + run[:15] + TRAIN_POSTS[1][0]])
    n = len(textsim.normalize_for_match(long_post))
    assert hit.reason == f"16 chars of protected post lp reappear verbatim ({16 / n:.0%} of its {n})"
    assert miss.reason is None


def test_span_threshold_follows_the_protected_post_length():
    rules = LeakageConfig()
    lengths = np.array([5, 19, 20, 27, 40, 53, 54, 200])
    # never under span_min_chars (8), span_share (0.3) of the post, at most span_chars (16);
    # posts under span_min_post (20) letters are left to the share rules
    assert rules.span_needed(lengths).tolist() == [np.inf, np.inf, 8, 9, 12, 16, 16, 16]
    post = "我昨天晚上一个人去了江边坐到天亮风很大我一直在想要不要跳下去"  # 30 letters: 9 needed
    index = nearcopy.NearCopyIndex([post])
    assert index.check([post[:9] + NORMAL])[0].reason is not None
    assert index.check([post[:8] + NORMAL])[0].reason is None


def test_stock_phrases_are_not_verbatim_leaks():
    protected = ["我真的好想离开这个世界，每天上班都像在坐牢，领导只会骂人，回到家也没有人说话。",
                 "想去死一死", "我也好想离开这个世界啊"]  # the last: a SOS-1K val post
    distinct = ["好想离开这个世界，活着太累了。", "今天又想去死一死了，还是算了。",
                "真的好想离开这个世界啊，谁来救救我，我已经撑不下去了。",
                "饭，我真的熬不下去了，我好想走，好想离开这个世界。"]  # a SOS-1K train post
    assert [r for _, r in D.leakage_verdicts(distinct, [Row(f"q{i}", t, 3) for i, t in enumerate(protected)])] \
        == [None] * len(distinct)


def test_span_index_finds_the_longest_common_run():
    def longest(a: str, b: str) -> int:
        return max((k for i in range(len(a)) for k in range(1, len(a) - i + 1) if a[i:i + k] in b), default=0)

    rng = random.Random(3)
    alphabet = "我你他好累想死"
    ref = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(25)]
    index = spans.SpanIndex(ref, 4)
    for _ in range(60):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        want = {p: n for p, r in enumerate(ref) if (n := longest(q, r)) >= 4}
        assert index.runs(q) == want, q


@pytest.mark.slow
def test_real_val_posts_spliced_at_40_to_50_percent_are_leakage(sos1k_dir):
    from llm_aug.data.io import load_dataset
    val = load_dataset(sos1k_dir / "fine" / "val.tsv").rows
    train = load_dataset(sos1k_dir / "fine" / "train.tsv").texts
    rng = random.Random(19)
    sources = [r.text for r in val if len(textsim.normalize_for_match(r.text)) >= 20]
    splices = [spliced(t, share, rng.choice(train), rng.random() < 0.5) for t in sources for share in (0.4, 0.45, 0.5)]
    before = sum(r is None for _, r in D.leakage_verdicts(splices, val, SPAN_OFF))
    now = [r for _, r in D.leakage_verdicts(splices, val)]
    assert before >= len(splices) // 5
    assert [t for t, r in zip(splices, now) if r is None] == []


def test_span_floor_below_the_ngram_size_is_refused():
    with pytest.raises(ValueError, match="span_min_chars"):
        FilterConfig.model_validate({"shingle_n": 10, "leakage": {"span_min_chars": 8}})
    assert FilterConfig.model_validate({"shingle_n": 4}).leakage.span_min_chars == 8
