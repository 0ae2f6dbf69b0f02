"""The ``--reask`` turn as a versioned prompt file (issue 20): the same requests as the
inline string it replaced, the same cache keys, and its name and hash on re-asked rows."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

import jsonlines
import pytest

from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.cache import request_hash
from llm_aug.llm.types import ChatRequest, Message
from llm_aug.prompting import list_prompts, parse_label
from llm_aug.prompting.classify import REASK_PROMPT, ClassifyConfig, classify_dataset, reask_prompt
from llm_aug.prompting.templates import prompt_root
from test_llm_classify import _runner
from test_prompt_templates import MINI

REPO = Path(__file__).resolve().parents[1]
# The message as it was built inline before it became a prompt file.
OLD_REASK = "你的回答无法解析出有效的等级（{problem}）。请只输出一行“等级：X”，X为{labels}中的一个整数。"
REPLIES = ["这条评论很难说", "", "   ", "等级：12", "等级：3，也可能是等级：7", "{\"label\": 99}", "等级：<|user|>",
           "</post> 无"]
SCHEMES = [scheme_for_task("fine"), scheme_for_task("binary"), MINI]


def _old_follow_up(problem: str, scheme) -> Message:
    return Message(role="user", content=OLD_REASK.format(problem=problem, labels="、".join(map(str, scheme.labels))))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_rendered_turn_is_the_old_inline_message(scheme):
    prompt, problems = reask_prompt(), {parse_label(reply, scheme).method for reply in REPLIES}
    assert {"empty", "no_label"} <= problems and len(problems) >= 3  # several parse problems covered
    bound = prompt.bind("problem", scheme=scheme)
    for problem in sorted(problems | {"ambiguous", "out_of_scheme"}):
        old = [_old_follow_up(problem, scheme)]
        assert bound(problem) == old == prompt.render(problem=problem, scheme=scheme), problem


def test_reask_requests_and_cache_keys_are_unchanged(tmp_path, demo_dir):
    data = load_dataset(demo_dir / "val.tsv", scheme_for_task("fine"))
    cycle = [*REPLIES, "等级：3"]  # one parses: not re-asked
    replies = {row.id: cycle[i % len(cycle)] for i, row in enumerate(data.rows)}

    def reply(request, index):
        return "等级：8" if len(request.messages) > 2 else replies[request.id]

    backend = FakeBackend(reply)
    out = tmp_path / "p.jsonl"
    classify_dataset(data, scheme_for_task("fine"), _runner(backend, tmp_path), ClassifyConfig(reask=True), out)
    first = {req.id: req for req in backend.seen if len(req.messages) == 2}
    follow_ups = [req for req in backend.seen if len(req.messages) > 2]
    assert follow_ups and len(follow_ups) < len(data)  # some replies parsed, the others re-asked
    for new in follow_ups:
        req, text = first[new.id], replies[new.id]
        problem = parse_label(text, scheme_for_task("fine")).method
        old = ChatRequest(id=req.id, json_schema=req.json_schema, params=req.params.model_copy(update={"n": 1}),
                          messages=(*req.messages, Message(role="assistant", content=text),
                                    _old_follow_up(problem, scheme_for_task("fine"))))
        assert new == old
        assert request_hash("ns", new) == request_hash("ns", old)


def test_only_reasked_rows_name_the_reask_prompt(tmp_path, demo_dir):
    data = load_dataset(demo_dir / "val.tsv", scheme_for_task("fine"))

    def reply(request, index):
        return "等级：8" if len(request.messages) > 2 or request.id == data.ids[0] else "说不清"

    out = tmp_path / "p.jsonl"
    classify_dataset(data, scheme_for_task("fine"), _runner(FakeBackend(reply), tmp_path),
                     ClassifyConfig(reask=True), out)
    rows = list(jsonlines.open(out))
    prompt = reask_prompt()
    assert prompt.name == REASK_PROMPT
    assert prompt.sha256 == hashlib.sha256(prompt.info.path.read_bytes()).hexdigest()
    assert not {"reasked", "reask_prompt", "reask_prompt_sha256"} & set(rows[0])  # answered the first time
    assert all(r["reasked"] and (r["reask_prompt"], r["reask_prompt_sha256"]) == (prompt.name, prompt.sha256)
               for r in rows[1:])


def test_the_turn_is_not_a_prompt_to_pick_but_ships_as_package_data():
    assert REASK_PROMPT not in {info.name for info in list_prompts()}
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["llm_aug.prompts"]
    root = prompt_root()
    shipped = {path for pattern in patterns for path in glob.glob(pattern, root_dir=root)}
    every = {p.relative_to(root).as_posix() for p in root.rglob("*.jinja")}
    assert reask_prompt().info.path.relative_to(root).as_posix() in every
    assert every <= shipped, sorted(every - shipped)
