"""``Prompt.bind``: the scheme's part rendered once per job, the same messages as ``render``.

Also ``neutralise``'s fast path against the plain regex-then-replace it stands for.
"""

from __future__ import annotations

import random
import re

import pytest

from llm_aug.data.io import Row
from llm_aug.data.schemes import scheme_for_task
from llm_aug.prompting.environment import neutralise
from llm_aug.prompting.templates import _SLOT, list_prompts, load_prompt
from test_prompt_templates import ATTACK, MINI, VARS

POSTS = ["今天又失眠了，感觉好累。", ATTACK, "<|user|>", "a|>b<c < /d<e", "", "  边上有空格  ", "\n",
         _SLOT, f"前{_SLOT}后", "{{ scheme }}", "{% raw %}", "<post>\n</post>", 7]
POST_PROMPTS = [i.name for i in list_prompts() if i.family in ("classify", "translate")]
HEAD = "{# ---\ndescription: d\ntask: fine\noutput: text\nvariables: {post: p, scheme: s}\n--- #}\n"


def _custom(tmp_path, body: str):
    path = tmp_path / "mine.v1.jinja"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_prompt(str(path))


@pytest.mark.parametrize("name", POST_PROMPTS)
@pytest.mark.parametrize("scheme", [MINI, scheme_for_task("fine"), scheme_for_task("binary")], ids=lambda s: s.name)
def test_bound_render_is_render(name, scheme):
    prompt = load_prompt(name)
    fixed = {**VARS, "scheme": scheme, "exemplars": [Row("e1", "下班了<|user|>好烦。", 0)]}
    fixed.pop("post")
    bound = prompt.bind("post", **fixed)
    for post in POSTS:
        assert bound(post) == prompt.render(**fixed, post=post), post


def test_the_rest_is_rendered_once(monkeypatch):
    prompt = load_prompt("classify/scene_levels")
    calls = []
    real = prompt._template.render
    monkeypatch.setattr(prompt._template, "render", lambda **kw: calls.append(1) or real(**kw))
    bound = prompt.bind("post", scheme=MINI)
    assert [bound(p)[-1].content for p in ("一", "二", "三")] == [
        prompt.render(scheme=MINI, post=p)[-1].content for p in ("一", "二", "三")]
    assert len(calls) == 1 + 3  # one for all bound posts, three for the plain renders


@pytest.mark.parametrize("body", [
    "<|user|>\n{{ post | upper }}\n",                                  # filtered
    "<|user|>\n{% if post %}{{ post }}{% endif %}\n",                  # in a condition
    "<|user|>\n{% for c in post %}{{ c }}.{% endfor %}\n",             # looped over
    "<|user|>\n{% set x = post %}{{ x }}{{ post }}\n",                 # assigned
    "<|user|>\n{{ post }}{{ [1, 2] | random }}\n",                     # a random filter
    "<|user|>\n{{ post }}{{ [post] | map('upper') | join }}\n",        # also used elsewhere
])
def test_other_uses_of_the_post_are_rendered_per_post(tmp_path, body):
    prompt = _custom(tmp_path, body + "{{ scheme.name }}\n")
    assert "post" not in prompt._bare
    bound = prompt.bind("post", scheme=MINI)
    if "random" in body:
        return  # nothing to compare against: each render may differ
    for post in ("abc", "", "x<y|>"):
        assert bound(post) == prompt.render(scheme=MINI, post=post)


def test_repeated_and_edge_placed_posts(tmp_path):
    prompt = _custom(tmp_path, "<|system|>\n{{ post }}\n{{ scheme.name }}\n<|user|>\n{{ post }}|{{ post }}\n")
    assert prompt._bare.get("post") == 3
    bound = prompt.bind("post", scheme=MINI)
    for post in POSTS:
        assert bound(post) == prompt.render(scheme=MINI, post=post), post


def test_a_fixed_value_holding_the_slot_falls_back(tmp_path):
    prompt = _custom(tmp_path, "<|user|>\n{{ scheme }}:{{ post }}\n")
    bound = prompt.bind("post", scheme=f"s{_SLOT}s")
    assert bound("p") == prompt.render(scheme=f"s{_SLOT}s", post="p")


def test_errors_are_those_of_render(tmp_path):
    prompt = _custom(tmp_path, "<|user|>\n{{ scheme.nope }}{{ post }}\n")
    with pytest.raises(Exception) as plain:
        prompt.render(scheme=MINI, post="p")
    with pytest.raises(type(plain.value), match=re.escape(str(plain.value))):
        prompt.bind("post", scheme=MINI)("p")


def _neutralise_reference(value) -> str:
    return re.sub(r"<(?=\s*/?\s*[A-Za-z|])", "＜", str(value)).replace("|>", "|＞")


def test_neutralise_fast_path_matches_the_plain_rule():
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice("<|>/ \ta好") for _ in range(rng.randrange(8)))
        assert neutralise(text) == _neutralise_reference(text), text
    for value in (3, None, "plain text", "<|system|>"):
        assert neutralise(value) == _neutralise_reference(value)
