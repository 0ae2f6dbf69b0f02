"""Few-shot exemplar selection and token-budget fitting."""

from __future__ import annotations

import pytest

from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import load_scheme
from llm_aug.prompting.exemplars import (
    ExemplarSelector,
    fit_to_budget,
    prompt_tokens,
    select_exemplars,
)
from llm_aug.prompting.templates import load_prompt

TEXTS = {
    0: ["今天上班好烦", "下雨了心情一般", "考试没考好有点郁闷", "又加班了", "外卖送错了好气"],
    1: ["最近总是睡不着", "心里堵得慌", "感觉很孤独", "好累啊什么都不想做", "每天都很难受"],
    2: ["真的不想活了", "好想消失", "活着没意思", "想一了百了", "不想再醒来了"],
    3: ["药已经买好了", "准备好了绳子", "这周末就走", "遗书写好了", "明天去江边"],
}
ROWS = [Row(f"r{lab}{i}", text, lab) for lab, texts in TEXTS.items() for i, text in enumerate(texts)]
# The query text also sits in train under another id, and an unlabelled row must never be used.
TRAIN = Dataset(ROWS + [Row("dup", "活着没意思", 2), Row("nolabel", "没有标签的帖子", None)])
QUERY = Row("r22", "活着没意思", 2)
CASES = [(s, pc) for s in ("random", "similar", "diverse") for pc in (False, True)]


@pytest.mark.parametrize("strategy, per_class", CASES)
def test_never_returns_the_query(strategy, per_class):
    selector = ExemplarSelector(3, strategy, seed=0, per_class=per_class).fit(TRAIN)
    for query in TRAIN.rows:
        picked = selector.select(query.text, query.id)
        assert query.id not in {r.id for r in picked}
        assert query.text not in {r.text for r in picked}
        assert all(r.label is not None for r in picked)
        assert len({r.text for r in picked}) == len(picked)


@pytest.mark.parametrize("strategy", ["random", "similar", "diverse"])
def test_query_excluded_by_text_alone(strategy):
    picked = select_exemplars(" 活着没意思 ", "some-new-id", TRAIN, 19, strategy, seed=1)
    assert "活着没意思" not in {r.text for r in picked}
    assert {"r22", "dup"}.isdisjoint({r.id for r in picked})


@pytest.mark.parametrize("strategy, per_class", CASES)
def test_deterministic_for_a_seed(strategy, per_class):
    def run() -> list[str]:
        selector = ExemplarSelector(4, strategy, seed=7, per_class=per_class).fit(TRAIN)
        return [r.id for r in selector.select(QUERY.text, QUERY.id)]

    assert run() == run()


def test_random_seeds_differ_and_are_stratified():
    runs = {tuple(r.id for r in select_exemplars(QUERY.text, QUERY.id, TRAIN, 4, "random", seed=s))
            for s in range(6)}
    assert len(runs) > 1
    for ids in runs:
        assert len({i[1] for i in ids}) == 4  # one per label before any label repeats


def test_random_per_class():
    picked = select_exemplars(QUERY.text, QUERY.id, TRAIN, 2, "random", seed=3, per_class=True)
    assert sorted(r.label for r in picked) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_similar_finds_near_duplicates_first():
    picked = select_exemplars("药已经买好了吗", "q", TRAIN, 2, "similar")
    assert picked[0].id == "r30"


def test_diverse_covers_labels_nearest_first():
    picked = select_exemplars("药已经买好了吗", "q", TRAIN, 4, "diverse")
    assert picked[0].id == "r30"
    assert sorted(r.label for r in picked) == [0, 1, 2, 3]
    assert len(select_exemplars("药已经买好了吗", "q", TRAIN, 6, "diverse")) == 6


def test_custom_embedder_is_used():
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return [[1.0, float(len(t))] for t in texts]

    picked = select_exemplars("x", "q", TRAIN, 2, "similar", embedder=embed)
    assert calls == [len(ROWS), 1] and len(picked) == 2  # "dup" repeats a text: pooled once


def test_edge_cases():
    assert select_exemplars("x", "q", TRAIN, 0, "random") == []
    assert select_exemplars("x", "q", [], 3, "similar") == []
    with pytest.raises(UserError, match="unknown exemplar strategy"):
        ExemplarSelector(3, "nearest")


def test_fit_to_budget_drops_from_the_end():
    prompt, scheme = load_prompt("classify/fewshot.v1"), load_scheme("sos11")
    exemplars = select_exemplars(QUERY.text, QUERY.id, TRAIN, 6, "similar")

    def render(rows):
        return prompt.render(scheme=scheme, post=QUERY.text, exemplars=rows)

    full = prompt_tokens(render(exemplars))
    none = prompt_tokens(render([]))
    fit = fit_to_budget(exemplars, render, full - 1)
    assert fit.exemplars == exemplars[: len(exemplars) - fit.dropped] and fit.dropped >= 1
    assert fit.fits and fit.tokens <= full - 1
    assert fit_to_budget(exemplars, render, full) == (exemplars, 0, full, True)
    hopeless = fit_to_budget(exemplars, render, none - 1)
    assert hopeless.exemplars == [] and hopeless.dropped == 6 and not hopeless.fits


def test_fit_to_budget_custom_counter():
    fit = fit_to_budget(["aa", "bb", "cc"], lambda rows: "".join(rows), 4, count_tokens=len)
    assert fit == (["aa", "bb"], 1, 4, True)
