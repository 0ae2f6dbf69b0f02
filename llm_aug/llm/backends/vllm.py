"""Offline vLLM engine in this process (extra ``vllm``; GPU hosts).

The runner hands this backend up to ``batch_size`` requests per call; they go to
``vllm.LLM.chat`` as one batch, each with its own ``SamplingParams`` (``n``, seed,
and guided JSON when the request has a schema), and vLLM schedules them together.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from typing import Any, Literal, Mapping, Sequence

from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.llm.backends.base import BaseBackend, check_generations
from llm_aug.llm.settings import BackendSettings
from llm_aug.llm.types import BadRequest, ChatRequest, Generation


def _import_vllm() -> Any:
    # vLLM logs to stdout by default, where `llm-aug classify` prints its JSON summary;
    # its engine processes inherit the setting. An explicit setting is kept.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        import vllm
    except ImportError as exc:
        raise UserError("the vllm backend needs vLLM, which runs on GPU hosts: "
                        "pip install 'llm-aug[vllm]' (or use --backend openai against "
                        "a `vllm serve` endpoint)") from exc
    return vllm


def structured_kwargs(vllm: Any, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """SamplingParams keywords for guided JSON, for old and new vLLM releases."""
    if schema is None:
        return {}
    module = getattr(vllm, "sampling_params", vllm)
    if hasattr(module, "StructuredOutputsParams"):  # vLLM >= 0.11
        return {"structured_outputs": module.StructuredOutputsParams(json=dict(schema))}
    if hasattr(module, "GuidedDecodingParams"):  # vLLM 0.6.3 .. 0.10
        return {"guided_decoding": module.GuidedDecodingParams(json=dict(schema))}
    raise UserError("this vLLM version has no structured-output parameters; upgrade vLLM")


def platform_defaults() -> dict[str, Any]:
    """Engine keywords this platform needs unless ``engine_kwargs`` says otherwise.

    On the CPU build (vLLM 0.32), a seeded sampled request whose prompt is prefilled in
    chunks kills the engine ("CPU Generator does not use offset"): every sampled request
    of ours carries a seed, so prefill whole prompts there (vLLM then raises
    ``max_num_batched_tokens`` to the context length by itself).
    """
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return {}
    is_cpu = getattr(current_platform, "is_cpu", None)
    return {"enable_chunked_prefill": False} if callable(is_cpu) and is_cpu() else {}


class VLLMBackend(BaseBackend):
    """``vllm.LLM`` built lazily from ``model`` and ``engine_kwargs`` (or a given ``engine``)."""

    name = "vllm"

    def __init__(self, model: str, *, engine: Any = None,
                 engine_kwargs: Mapping[str, Any] | None = None, batch_size: int = 256) -> None:
        super().__init__(model)
        self.batch_size = batch_size
        self._engine_obj, self._engine_kwargs = engine, dict(engine_kwargs or {})
        self._lock = threading.Lock()

    def _engine(self, vllm: Any) -> Any:
        if self._engine_obj is None:
            kwargs = {**platform_defaults(), **self._engine_kwargs}
            self._engine_obj = vllm.LLM(model=self.model, **kwargs)
        return self._engine_obj

    async def generate(self, batch: Sequence[ChatRequest]) -> list[list[Generation]]:
        return await asyncio.to_thread(self._generate_sync, list(batch))

    def _generate_sync(self, batch: list[ChatRequest]) -> list[list[Generation]]:
        vllm = _import_vllm()
        conversations = [[{"role": m.role, "content": m.content} for m in r.messages]
                         for r in batch]
        params = [self._sampling_params(vllm, r) for r in batch]
        with self._lock:
            engine = self._engine(vllm)
            try:
                outputs = engine.chat(conversations, sampling_params=params, use_tqdm=False)
            except ValueError as exc:  # e.g. a prompt longer than the model's context
                raise BadRequest(f"vLLM refused the batch: {exc}") from exc
        return [check_generations(r, _generations(r, out)) for r, out in zip(batch, outputs)]

    @staticmethod
    def _sampling_params(vllm: Any, request: ChatRequest) -> Any:
        p = request.params
        return vllm.SamplingParams(
            n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
            seed=p.seed, stop=list(p.stop) or None,
            **({"logprobs": p.top_logprobs} if p.top_logprobs is not None else {}),
            **structured_kwargs(vllm, request.json_schema))


class VLLMBackendConfig(BackendSettings):
    """In-process vLLM engine (extra ``vllm``, GPU hosts)."""

    kind: Literal["vllm"] = "vllm"
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(256, ge=1)

    def build(self) -> VLLMBackend:
        """A :class:`VLLMBackend`; the engine loads on the first batch."""
        return VLLMBackend(self.model, engine_kwargs=self.engine_kwargs, batch_size=self.batch_size)


def _generations(request: ChatRequest, output: Any) -> list[Generation]:
    prompt_tokens = len(getattr(output, "prompt_token_ids", None) or [])
    return [Generation(request_id=request.id, index=int(c.index), text=c.text,
                       finish_reason=c.finish_reason or "stop", prompt_tokens=prompt_tokens,
                       completion_tokens=len(c.token_ids or []), logprobs=_logprobs(c))
            for c in output.outputs]


MAX_LOGPROB_TOKENS = 16  # as the OpenAI-compatible backend: a label answer is short


def _logprobs(completion: Any) -> list[tuple[str, dict[str, float]]] | None:
    """vLLM's per-token ``{token id: Logprob}`` as the (token, {alternative: logprob}) pairs
    the OpenAI backend gives (``--score-labels``); None when none were asked for."""
    steps = getattr(completion, "logprobs", None)
    if not steps:
        return None
    out = []
    for token_id, alts in zip(completion.token_ids, steps[:MAX_LOGPROB_TOKENS]):
        texts = {tid: (lp.decoded_token if lp.decoded_token is not None else str(tid))
                 for tid, lp in alts.items()}
        pairs: dict[str, float] = {}
        for tid, lp in alts.items():  # two ids may decode alike: keep the likelier
            value = float(lp.logprob)
            if math.isfinite(value) or tid == token_id:  # -inf: masked, and not JSON
                pairs[texts[tid]] = max(pairs.get(texts[tid], -9999.0), max(value, -9999.0))
        out.append((texts.get(token_id, str(token_id)), pairs))
    return out
