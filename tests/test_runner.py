"""Runner: ordering, retries, timeouts, errors on rows, cache, resume, limits, accounting."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time

import pytest

from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.cache import ResultsFile
from llm_aug.llm.config import ModelPrice, RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, SamplingParams, ServerError, user_messages
from llm_server import LLMServer


def reqs(count: int, **params) -> list[ChatRequest]:
    return [ChatRequest(id=f"item-{i:04d}", messages=user_messages(f"第{i}条帖子"),
                        params=SamplingParams(**params)) for i in range(count)]


def cfg(**kw) -> RunnerConfig:
    base = {"quiet": True, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "concurrency": 8}
    return RunnerConfig(**{**base, **kw})


@pytest.fixture
def server():
    with LLMServer(hang_s=3) as srv:
        yield srv


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


class Jittery(FakeBackend):
    """Finishes in random order and records the most calls in flight at once."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.active = self.max_active = 0

    async def generate_one(self, request):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(random.random() * 0.01)
        self.active -= 1
        return await super().generate_one(request)


def test_rows_follow_input_order_and_concurrency_is_bounded(tmp_path):
    backend = Jittery()
    out = tmp_path / "out.jsonl"
    summary = Runner(backend, cfg(concurrency=5)).run(reqs(60), out)
    assert [r["id"] for r in lines(out)] == [f"item-{i:04d}" for i in range(60)]
    assert [r.id for r in summary.rows] == [f"item-{i:04d}" for i in range(60)]
    assert backend.max_active == 5
    assert summary.n_ok == 60 and summary.requests_made == 60 and summary.retries == 0
    assert summary.completion_tokens == sum(g.completion_tokens for r in summary.rows
                                            for g in r.generations)


def test_retries_server_faults_until_success(server):
    server.script("500", "429", "malformed")
    summary = Runner(OpenAICompatBackend("m", server.url), cfg()).run(reqs(1))
    assert summary.n_ok == 1 and summary.retries == 3 and server.request_count == 4


@pytest.mark.parametrize("fault", ["400", "401"])
def test_client_errors_are_not_retried_and_the_run_goes_on(server, fault, tmp_path):
    server.script("ok", fault)  # a 401 before any success stops the run: test_fail_fast.py
    out = tmp_path / "out.jsonl"
    summary = Runner(OpenAICompatBackend("m", server.url), cfg(concurrency=1)).run(reqs(3), out)
    assert server.request_count == 3  # one attempt for the bad item, one each for the others
    rows = lines(out)
    assert rows[1]["error"].startswith("BadRequest" if fault == "400" else "AuthError")
    assert rows[1]["generations"] == [] and rows[0]["error"] is None and rows[2]["error"] is None
    assert summary.n_failed == 1 and summary.n_ok == 2


def test_retry_after_is_honoured(server):
    server.retry_after_s, server.retry_after_ms_header = 1.0, False
    server.script("429")
    started = time.perf_counter()
    summary = Runner(OpenAICompatBackend("m", server.url), cfg()).run(reqs(1))
    assert summary.n_ok == 1 and time.perf_counter() - started >= 1.0


def test_hang_times_out_and_is_retried(server):
    server.script("hang")
    started = time.perf_counter()
    summary = Runner(OpenAICompatBackend("m", server.url), cfg(timeout_s=0.3)).run(reqs(1))
    assert summary.n_ok == 1 and summary.retries == 1
    assert time.perf_counter() - started < 2.5


def test_failure_after_last_retry_is_recorded_on_its_row(tmp_path):
    backend = FakeBackend(failures=lambda r, call: ServerError("down") if r.id == "item-0001"
                          else None)
    out = tmp_path / "out.jsonl"
    summary = Runner(backend, cfg(max_retries=2)).run(reqs(4), out)
    rows = lines(out)
    assert len(rows) == 4 and rows[1]["error"] == "ServerError: down"
    assert sum(1 for r in backend.seen if r.id == "item-0001") == 3
    assert summary.n_failed == 1 and summary.errors == {"ServerError": 1}


def test_unexpected_exceptions_are_recorded_not_retried():
    backend = FakeBackend(failures=lambda r, call: KeyError("bug") if r.id == "item-0000" else None)
    summary = Runner(backend, cfg()).run(reqs(2))
    assert summary.rows[0].error == "KeyError: 'bug'" and summary.rows[1].ok
    assert backend.calls == 2


def test_cached_rerun_makes_zero_requests(server, tmp_path):
    config = cfg(cache_path=tmp_path / "cache.sqlite")
    first = Runner(OpenAICompatBackend("m", server.url), config).run(reqs(30, n=2), tmp_path / "a")
    assert server.request_count == 30
    server.reset_counts()
    again = Runner(OpenAICompatBackend("m", server.url), config).run(reqs(30, n=2), tmp_path / "b")
    assert server.request_count == 0 and again.requests_made == 0 and again.n_cached == 30
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert again.prompt_tokens == 0 and first.prompt_tokens > 0  # cache hits cost nothing


def test_raising_n_keeps_the_cached_samples(tmp_path):
    counter = iter(range(1000))
    backend = FakeBackend(lambda r, i: f"s{next(counter)}")
    config = cfg(cache_path=tmp_path / "c.sqlite")
    two = Runner(backend, config).run(reqs(1, n=2, temperature=1.0))
    three = Runner(backend, config).run(reqs(1, n=3, temperature=1.0))
    assert three.rows[0].texts[:2] == two.rows[0].texts
    assert len(set(three.rows[0].texts)) == 3


def test_model_and_params_are_part_of_the_cache_key(tmp_path):
    config = cfg(cache_path=tmp_path / "c.sqlite")
    Runner(FakeBackend(model="a"), config).run(reqs(3))
    other_model = FakeBackend(model="b")
    Runner(other_model, config).run(reqs(3))
    assert other_model.calls == 3
    hotter = FakeBackend(model="a")
    Runner(hotter, config).run(reqs(3, temperature=0.7))
    assert hotter.calls == 3
    same = FakeBackend(model="a")
    renamed = [r.model_copy(update={"id": "new-" + r.id}) for r in reqs(3)]
    Runner(same, config).run(renamed)
    assert same.calls == 0  # the item id is not part of the key


def test_resume_repairs_a_truncated_line_and_requests_only_the_rest(tmp_path):
    full = tmp_path / "full.jsonl"
    Runner(FakeBackend(), cfg()).run(reqs(10), full)
    partial = tmp_path / "partial.jsonl"
    text = full.read_text(encoding="utf-8").splitlines(keepends=True)
    partial.write_text("".join(text[:3] + text[5:7]) + text[7][:25], encoding="utf-8")
    backend = FakeBackend()
    summary = Runner(backend, cfg()).run(reqs(10), partial)
    assert sorted(r.id for r in backend.seen) == [f"item-{i:04d}" for i in (3, 4, 7, 8, 9)]
    assert summary.n_resumed == 5 and partial.read_bytes() == full.read_bytes()


def test_resume_requests_failed_and_changed_items_again(tmp_path):
    out = tmp_path / "out.jsonl"
    Runner(FakeBackend(failures=[ServerError("x")] * 3), cfg(max_retries=0)).run(reqs(5), out)
    assert sum(r["error"] is not None for r in lines(out)) == 3
    changed = reqs(5)
    changed[4] = changed[4].model_copy(update={"messages": user_messages("改过的帖子")})
    backend = FakeBackend()
    summary = Runner(backend, cfg()).run(changed, out)
    assert backend.calls == 4 and summary.n_resumed == 1 and summary.n_ok == 5
    assert lines(out)[4]["generations"][0]["text"] == "改过的帖子 #0"
    assert len({r["id"] for r in lines(out)}) == 5


def test_a_corrupt_line_inside_the_file_is_an_error(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "x"\n{"also": "bad"}\n', encoding="utf-8")
    with pytest.raises(Exception, match="out.jsonl:1"):
        ResultsFile.read_rows(out)


def test_dry_run_counts_without_calling_the_backend(tmp_path):
    config = cfg(cache_path=tmp_path / "c.sqlite",
                 prices={"fake": ModelPrice(input_per_1m=1.0, output_per_1m=2.0)})
    Runner(FakeBackend(), config).run(reqs(4, max_tokens=50))
    backend = FakeBackend()
    estimate = Runner(backend, config).dry_run(reqs(10, max_tokens=50, n=1))
    assert backend.calls == 0
    assert estimate.n_items == 10 and estimate.n_cached == 4 and estimate.n_requests == 6
    assert estimate.completion_tokens_max == 300 and estimate.prompt_tokens > 0
    assert estimate.cost_usd_max == pytest.approx((estimate.prompt_tokens + 600) / 1e6)


def test_cost_is_accounted_from_prices():
    config = cfg(prices={"fake": ModelPrice(input_per_1m=2.0, output_per_1m=8.0)})
    summary = Runner(FakeBackend(["abcd"]), config).run(reqs(5, n=2))
    assert summary.completion_tokens == 10
    assert summary.cost_usd == pytest.approx((summary.prompt_tokens * 2 + 10 * 8) / 1e6)
    manifest = summary.to_manifest()
    assert "rows" not in manifest and manifest["n_ok"] == 5
    assert Runner(FakeBackend(), cfg()).run(reqs(1)).cost_usd is None


def test_rpm_limit_spaces_requests():
    started = time.perf_counter()
    Runner(FakeBackend(), cfg(rpm=1200, concurrency=16)).run(reqs(40))  # 20 per second
    assert time.perf_counter() - started >= 0.9


def test_tpm_limit_spaces_requests():
    started = time.perf_counter()
    # ~105 estimated tokens each against 6000 per minute (100/s): ~0.5 s for 6 requests.
    Runner(FakeBackend(["x"]), cfg(tpm=6000)).run(reqs(6, max_tokens=100))
    assert time.perf_counter() - started >= 0.4


def test_duplicate_ids_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        Runner(FakeBackend(), cfg()).run(reqs(2) + reqs(1))


def test_batching_backend_gets_batches():
    class Batching(FakeBackend):
        sizes: list[int] = []

        async def generate(self, batch):
            self.sizes.append(len(batch))
            return await super().generate(batch)
    backend = Batching(batch_size=4)
    summary = Runner(backend, cfg(concurrency=2)).run(reqs(10))
    assert sorted(backend.sizes) == [2, 4, 4] and summary.n_ok == 10


def test_progress_bar_shows_rate_unless_quiet(capsys, monkeypatch):
    from llm_aug.core import progress

    monkeypatch.setitem(progress._QUIET, "value", False)  # CI runs with LLM_AUG_QUIET=1
    Runner(FakeBackend(latency_s=0.03), cfg(quiet=False, concurrency=2)).run(reqs(30))
    err = capsys.readouterr().err
    assert re.search(r"\b[1-9]\d*/30 \[", err)  # it moved
    assert re.search(r"\d(\.\d+)?item/s", err) and "<" in err  # rate and ETA
    Runner(FakeBackend(), cfg(quiet=True)).run(reqs(30))
    assert capsys.readouterr().err == ""


def test_fake_backend_satisfies_the_protocol():
    from llm_aug.llm.types import Backend
    assert isinstance(FakeBackend(), Backend)
