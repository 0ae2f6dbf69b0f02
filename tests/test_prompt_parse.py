"""Reply parsing: a table of reply shapes for labels, and generation replies for post lists."""

from __future__ import annotations

import pytest

from llm_aug.data.schemes import load_scheme
from llm_aug.prompting.parse import cn_to_int, parse_label, parse_post_list

FINE = load_scheme("sos11")
BINARY = load_scheme("binary")

TABLE = """| 评论 | 风险等级 | 理由 |
|---|---|---|
| 买好了药，就等周末 | 8 | 日期大致确定 |"""
DEFINITIONS_TABLE = """| 等级 | 描述 |
|---|---|
| 0 | 无痛苦 |
| 1 | 轻微痛苦 |

综合判断，最终等级：3"""

LABEL_CASES = [
    # (reply, expected label, expected method)
    ("等级：7", 7, "cue"),
    ("等级: 7", 7, "cue"),
    ("第7级", 7, "suffix"),
    ("风险等级为7级", 7, "cue"),
    ("七", 7, "bare"),
    ("十", 10, "bare"),
    ("等级：十级", 10, "cue"),
    ("Level 7", 7, "cue"),
    ("risk level: 3", 3, "cue"),
    ("10", 10, "bare"),
    ("1", 1, "bare"),
    ("第10级", 10, "suffix"),
    ("７", 7, "bare"),
    ("等级：１０", 10, "cue"),
    ('{"label": 7, "reason": "已经买好了药"}', 7, "json"),
    ('{"label": "7"}', 7, "json"),
    ('好的，结果如下：\n```json\n{"label": 4, "reason": "想死但没有计划"}\n```', 4, "json"),
    ('{"result": {"等级": "六级"}}', 6, "json"),
    (TABLE, 8, "table"),
    ("| 风险等级 | 5（强烈自杀意愿） |", 5, "table"),
    (DEFINITIONS_TABLE, 3, "cue"),
    ("**风险等级：** 6", 6, "cue"),
    ("在0-10级中，该评论属于第7级。", 7, "suffix"),
    ("风险评分：7/10", 7, "cue"),
    ("该评论表达了强烈痛苦（3级），也有自杀意愿，综合判断风险等级为4级", 4, "cue"),
    ("<think>可能是3级，也可能是5级</think>\n等级：5", 5, "cue"),
    ("好的。\n\n等级：七级\n理由：提到已经想好了方式", 7, "cue"),
    ("2023年那次之后，等级：3", 3, "cue"),
    ("我认为是7。", 7, "single_number"),
    ("", None, "empty"),
    ("我无法对此做出判断。", None, "no_label"),
    ("等级：12", None, "out_of_scheme"),
    ('{"label": 11}', None, "out_of_scheme"),
    ("15", None, "out_of_scheme"),
    ("3级或者5级", None, "ambiguous"),
    ("评论提到3个人和5天", None, "ambiguous"),
    ('{"label": 3} {"label": 4}', None, "ambiguous"),
    ("等级：3。不对，等级：4", None, "ambiguous"),
    ("等级：7.5", None, None),
    ("等级一般来说看计划，这条没有数字", None, "no_label"),
]


@pytest.mark.parametrize("reply, label, method", LABEL_CASES)
def test_parse_label_fine(reply, label, method):
    result = parse_label(reply, FINE)
    assert result.label == label
    if method is not None:
        assert result.method == method


def test_reason_is_kept():
    assert parse_label('{"label": 7, "reason": "已经买好了药"}', FINE).reason == "已经买好了药"
    assert parse_label("等级：2\n理由：明确表达了痛苦", FINE).reason == "明确表达了痛苦"


@pytest.mark.parametrize("reply, label", [
    ("等级：1", 1), ("0", 0), ("高风险", 1), ("低风险", 0), ("High risk.", 1),
    ("等级：1（高风险）", 1), ("等级：2", None), ("不属于高风险，属于低风险", None), ("没法判断", None),
])
def test_parse_label_binary(reply, label):
    assert parse_label(reply, BINARY).label == label


def test_never_a_default_class():
    for reply in ["", "   ", "抱歉，我不能回答。", "无", "N/A"]:
        assert parse_label(reply, FINE).label is None


@pytest.mark.parametrize("text, value", [("七", 7), ("十", 10), ("十一", 11), ("二十三", 23), ("两", 2),
                                         ("〇", 0), ("7", 7), ("百", None), ("十十", None)])
def test_cn_to_int(text, value):
    assert cn_to_int(text) == value


POST_CASES = [
    ("以下是3条评论：\n1. 我好累\n2. 真的不想活了\n3. 明天就走\n\n希望这些对你有帮助。",
     ["我好累", "真的不想活了", "明天就走"]),
    ("1、我好累\n2、不想活了", ["我好累", "不想活了"]),
    ("(1) 我好累\n（2）不想活了", ["我好累", "不想活了"]),
    ("① 我好累\n② 不想活了", ["我好累", "不想活了"]),
    ("- 我好累\n* 不想活了\n• 明天就走", ["我好累", "不想活了", "明天就走"]),
    ('1. "我好累"\n2. “不想活了”\n3. 「明天就走」', ["我好累", "不想活了", "明天就走"]),
    ('["我好累", "不想活了"]', ["我好累", "不想活了"]),
    ('```json\n[\n  "我好累",\n  "不想活了"\n]\n```', ["我好累", "不想活了"]),
    ('{"posts": ["我好累", "不想活了"]}', ["我好累", "不想活了"]),
    ('[{"text": "我好累"}, {"评论": "不想活了"}]', ["我好累", "不想活了"]),
    ("我好累\n不想活了\n", ["我好累", "不想活了"]),
    ("好的，这是两条：\n希望明天不要醒来\n如果你看到这条，我已经不在了",
     ["希望明天不要醒来", "如果你看到这条，我已经不在了"]),
    ("评论1：我好累\n评论2：不想活了", ["我好累", "不想活了"]),
    ("1. 我好累（7级）\n2. 不想活了 (等级: 7)", ["我好累", "不想活了"]),
    ("1. 我真的好累，\n每天都睡不着\n2. 不想活了", ["我真的好累，每天都睡不着", "不想活了"]),
    ("**1.** 我好累\n**2.** 不想活了", ["我好累", "不想活了"]),
    ("<think>先想想</think>1. 我好累", ["我好累"]),
    ("", []),
]


@pytest.mark.parametrize("reply, posts", POST_CASES)
def test_parse_post_list(reply, posts):
    assert parse_post_list(reply) == posts
