"""SQLite request cache and the resumable JSONL results file."""

from __future__ import annotations

import sqlite3

import pytest

from llm_aug.core.errors import DataError
from llm_aug.llm.cache import RequestCache, ResultsFile, request_hash
from llm_aug.llm.types import ChatRequest, Generation, ResultRow, SamplingParams, user_messages


def req(text: str = "帖子", item: str = "a", **params) -> ChatRequest:
    return ChatRequest(id=item, messages=user_messages(text), params=SamplingParams(**params))


def gen(index: int, text: str = "t") -> Generation:
    return Generation(request_id="a", index=index, text=text, prompt_tokens=3, completion_tokens=1)


def test_key_depends_on_what_determines_the_answer():
    base = request_hash("openai:m", req())
    assert base == request_hash("openai:m", req(item="other-id"))
    assert base == request_hash("openai:m", req(n=5))  # n is not part of a sample's key
    assert base != request_hash("openai:other", req())
    assert base != request_hash("openai:m", req("别的帖子"))
    assert base != request_hash("openai:m", req(seed=1))
    assert base != request_hash("openai:m", req(temperature=0.5))
    schema = req().model_copy(update={"json_schema": {"type": "object"}})
    assert base != request_hash("openai:m", schema)


def test_get_put_roundtrip_and_partial_hits(tmp_path):
    path = tmp_path / "c.sqlite"
    request = req(n=3)
    key = request_hash("x:m", request)
    with RequestCache(path) as cache:
        assert cache.get(request, key) == [None, None, None]
        cache.put(key, [gen(0, "零"), gen(2, "二")])
    with RequestCache(path) as cache:  # persisted across reopen
        got = cache.get(request.model_copy(update={"id": "b"}), key)
        assert [g.text if g else None for g in got] == ["零", None, "二"]
        assert got[0].request_id == "b" and got[0].prompt_tokens == 3
        cache.put(key, [gen(0, "changed")])  # first answer wins
        assert cache.get(request, key)[0].text == "零" and len(cache) == 2


def test_uncommitted_puts_are_lost_only_up_to_the_batch(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = RequestCache(path, commit_every=2)
    for i in range(5):
        cache.put(f"k{i}", [gen(0)])
    # Another connection (as after a crash) sees the committed batches only.
    seen = sqlite3.connect(path).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert seen == 4
    cache.close()
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 5


def row(item: str, key: str = "h", error: str | None = None) -> ResultRow:
    return ResultRow(id=item, backend="fake", model="m", request_hash=key, error=error,
                     generations=[] if error else [gen(0, item)])


def test_results_file_resume_append_finalize(tmp_path):
    path = tmp_path / "out.jsonl"
    store = ResultsFile(path)
    assert store.resume({"a": "h", "b": "h"}) == {}
    store.append(row("b"))
    store.finalize(["a", "b"], {"b": row("b"), "a": row("a")})
    rows, repair = ResultsFile.read_rows(path)
    assert [r.id for r in rows] == ["a", "b"] and not repair
    assert "帖子" not in path.read_text(encoding="utf-8")


def test_resume_drops_truncated_failed_stale_and_unknown_rows(tmp_path):
    path = tmp_path / "out.jsonl"
    good = [row("a"), row("b", error="ServerError: x"), row("c", key="old"), row("zz")]
    text = "".join(r.model_dump_json() + "\n" for r in good) + '{"id": "d", "back'
    path.write_text(text, encoding="utf-8")
    keys = {"a": "h", "b": "h", "c": "h", "d": "h"}
    assert set(ResultsFile.peek(path, keys, retry_failed=True)) == {"a"}
    assert set(ResultsFile.peek(path, keys, retry_failed=False)) == {"a", "b"}
    store = ResultsFile(path)
    kept = store.resume(keys)
    store.close()
    assert set(kept) == {"a"}
    rows, repair = ResultsFile.read_rows(path)
    assert [r.id for r in rows] == ["a"] and not repair  # repaired before appending


def test_corruption_before_the_last_line_is_a_data_error(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("not json\n" + row("a").model_dump_json() + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"out.jsonl:1"):
        ResultsFile.read_rows(path)


def test_finalize_writes_the_appended_lines_again_in_input_order(tmp_path, monkeypatch):
    import llm_aug.llm.results_file as results_module

    path = tmp_path / "out.jsonl"
    path.write_text(row("a").model_dump_json() + "\n", encoding="utf-8")
    store = ResultsFile(path)
    resumed = store.resume({k: "h" for k in "abcd"})
    appended = {k: row(k) for k in "dbc"}
    for r in appended.values():
        store.append(r)
    replaced = row("c", error="ServerError: replaced")  # another object for an appended id
    final = {**resumed, **appended, "c": replaced}
    dumped = []
    monkeypatch.setattr(results_module, "_dumps", lambda r: dumped.append(r.id) or r.model_dump_json())
    store.finalize(list("abcd"), final)
    assert path.read_text(encoding="utf-8") == "".join(final[k].model_dump_json() + "\n" for k in "abcd")
    assert sorted(dumped) == ["a", "c"]  # b and d: their appended lines, not serialised again
