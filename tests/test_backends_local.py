"""In-process backends (vLLM, llama.cpp, LangChain) with stand-in engines."""

from __future__ import annotations

import asyncio
import sys
import time
import types
from dataclasses import dataclass, field

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from llm_aug.core.errors import UserError
from llm_aug.llm.backends import make_backend
from llm_aug.llm.backends.langchain import LangChainBackend
from llm_aug.llm.backends.llamacpp import LlamaCppBackend, resolve_gguf
from llm_aug.llm.backends.vllm import VLLMBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import (
    BadRequest,
    ChatRequest,
    RateLimited,
    SamplingParams,
    ServerError,
    user_messages,
)

SCHEMA = {"type": "object", "properties": {"label": {"type": "integer"}}}


def req(i: int, n: int = 1, schema: dict | None = None) -> ChatRequest:
    return ChatRequest(id=f"r{i}", messages=user_messages(f"帖子{i}"),
                       params=SamplingParams(n=n, seed=11), json_schema=schema)


# -- vLLM --------------------------------------------------------------------------------
@dataclass
class _StructuredOutputsParams:
    json: dict


@dataclass
class _SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    stop: list | None = None
    structured_outputs: _StructuredOutputsParams | None = None


@dataclass
class _Engine:
    calls: list = field(default_factory=list)

    def chat(self, conversations, sampling_params, use_tqdm=True):
        self.calls.append((conversations, sampling_params))
        outs = []
        for conv, sp in zip(conversations, sampling_params):
            text = conv[-1]["content"] + ("{json}" if sp.structured_outputs else "")
            outs.append(types.SimpleNamespace(
                prompt_token_ids=[1, 2, 3],
                outputs=[types.SimpleNamespace(index=i, text=f"{text}/{i}", token_ids=[7] * (i + 1),
                                               finish_reason="length") for i in range(sp.n)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = _SamplingParams
    module.sampling_params = types.SimpleNamespace(StructuredOutputsParams=_StructuredOutputsParams)
    module.LLM = lambda model, **kw: _Engine()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_vllm_batches_requests_with_their_own_sampling_params(fake_vllm):
    engine = _Engine()
    backend = VLLMBackend("qwen", engine=engine, batch_size=8)
    out = asyncio.run(backend.generate([req(0, n=2), req(1, schema=SCHEMA)]))
    assert len(engine.calls) == 1  # one engine call for the whole batch
    _, params = engine.calls[0]
    assert params[0].n == 2 and params[0].seed == 11 and params[0].structured_outputs is None
    assert params[1].structured_outputs.json == SCHEMA
    assert [g.text for g in out[0]] == ["帖子0/0", "帖子0/1"]
    assert out[1][0].text == "帖子1{json}/0" and out[1][0].finish_reason == "length"
    assert out[0][1].prompt_tokens == 3 and out[0][1].completion_tokens == 2


def test_vllm_through_the_runner_uses_big_batches(fake_vllm, tmp_path):
    backend = make_backend({"kind": "vllm", "model": "qwen", "batch_size": 16})
    summary = Runner(backend, RunnerConfig(quiet=True)).run([req(i) for i in range(40)])
    assert summary.n_ok == 40 and len(backend._engine_obj.calls) == 3


def test_vllm_missing_is_a_clear_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserError, match=r"llm-aug\[vllm\]"):
        asyncio.run(VLLMBackend("qwen").generate([req(0)]))


# -- llama.cpp ---------------------------------------------------------------------------
class _Llama:
    def __init__(self):
        self.calls, self.active, self.overlap = [], 0, False

    def create_chat_completion(self, messages, seed=None, **kw):
        self.active += 1
        self.overlap |= self.active > 1
        time.sleep(0.01)
        self.active -= 1
        self.calls.append({"seed": seed, **kw})
        if "too long" in messages[-1]["content"]:
            raise ValueError("Requested tokens exceed context window")
        return {"choices": [{"message": {"content": f"{messages[-1]['content']}:{seed}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2}}


def test_llamacpp_serialises_calls_and_draws_n_seeded_samples():
    llama = _Llama()
    backend = LlamaCppBackend("tiny", llama=llama)

    async def many():
        return await asyncio.gather(*(backend.generate([req(i, n=2, schema=SCHEMA)])
                                      for i in range(6)))
    out = asyncio.run(many())
    assert not llama.overlap and len(llama.calls) == 12
    assert [g.text for g in out[0][0]] == ["帖子0:11", "帖子0:12"]
    assert llama.calls[0]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert out[0][0][0].prompt_tokens == 5


def test_llamacpp_context_overflow_is_a_bad_request():
    backend = LlamaCppBackend("tiny", llama=_Llama())
    bad = ChatRequest(id="x", messages=user_messages("too long"))
    with pytest.raises(BadRequest):
        asyncio.run(backend.generate([bad]))


def test_gguf_resolution_order(tmp_path, monkeypatch):
    models = tmp_path / "cache"
    monkeypatch.setenv("LLM_AUG_CACHE_DIR", str(models))
    monkeypatch.delenv("LLM_AUG_GGUF", raising=False)
    with pytest.raises(UserError, match="LLM_AUG_GGUF") as info:
        resolve_gguf()
    assert "model_path" in str(info.value) and str(models / "models") in str(info.value)
    (models / "models").mkdir(parents=True)
    cached = models / "models" / "a.gguf"
    cached.write_bytes(b"x")
    assert resolve_gguf() == cached
    (models / "models" / "b.gguf").write_bytes(b"x")
    assert resolve_gguf("b") == models / "models" / "b.gguf"
    with pytest.raises(UserError, match="a.gguf, b.gguf"):
        resolve_gguf()
    env_file = tmp_path / "env.gguf"
    env_file.write_bytes(b"x")
    monkeypatch.setenv("LLM_AUG_GGUF", str(env_file))
    assert resolve_gguf() == env_file
    explicit = tmp_path / "explicit.gguf"
    explicit.write_bytes(b"x")
    assert resolve_gguf(model_path=explicit) == explicit
    with pytest.raises(UserError, match="not found"):
        resolve_gguf(model_path=tmp_path / "missing.gguf")


def test_llamacpp_missing_package_names_the_extra(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    backend = LlamaCppBackend(model_path=gguf)
    assert backend.model == "m.gguf"  # the cache namespace follows the file
    with pytest.raises(UserError, match=r"llm-aug\[local\]"):
        asyncio.run(backend.generate([req(0)]))


# -- LangChain ---------------------------------------------------------------------------
def test_langchain_adapter_returns_n_samples_in_order():
    backend = LangChainBackend(FakeListChatModel(responses=["低", "中", "高"]), model="fake-lc")
    [gens] = asyncio.run(backend.generate([req(0, n=3)]))
    assert [g.text for g in gens] == ["低", "中", "高"] and backend.model == "fake-lc"
    assert all(g.prompt_tokens > 0 and g.completion_tokens == 1 for g in gens)


class _Status(Exception):
    def __init__(self, status_code):
        super().__init__(f"status {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize("status,error",
                         [(429, RateLimited), (503, ServerError), (400, BadRequest)])
def test_langchain_provider_errors_are_mapped(status, error):
    class Failing(FakeListChatModel):
        async def agenerate(self, *a, **kw):
            raise _Status(status)
    backend = LangChainBackend(Failing(responses=["x"]))
    with pytest.raises(error):
        asyncio.run(backend.generate([req(0)]))


def test_langchain_from_import_path():
    backend = make_backend({"kind": "langchain", "model": "lc",
                            "chat_model": "langchain_core.language_models.fake_chat_models:"
                                          "FakeListChatModel", "kwargs": {"responses": ["好"]}})
    [[g]] = asyncio.run(backend.generate([req(0)]))
    assert g.text == "好" and backend.model == "lc"
