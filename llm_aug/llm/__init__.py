"""The LLM runtime: request/response types, backends, transports, the runner and its config.

It imports nothing of prompting, augment, classifiers, eval, jobs, experiment or cli
(checked by import-linter). Build a runner with :func:`build_runner`::

    from llm_aug.llm import ChatRequest, build_runner, user_messages
    runner = build_runner({"backend": {"kind": "openai", "model": "qwen", "base_url": "http://127.0.0.1:8000/v1"}})
    summary = runner.run([ChatRequest(id="a", messages=user_messages("你好"))])
"""

from llm_aug.llm.build import build_runner, load_llm_config
from llm_aug.llm.config import LLMConfig, RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import (
    Backend,
    BackendError,
    ChatRequest,
    DryRunEstimate,
    Generation,
    Message,
    ResultRow,
    RunSummary,
    SamplingParams,
    user_messages,
)

__all__ = [
    "Backend", "BackendError", "ChatRequest", "DryRunEstimate", "Generation", "LLMConfig", "Message",
    "ResultRow", "RunSummary", "Runner", "RunnerConfig", "SamplingParams", "build_runner",
    "load_llm_config", "user_messages",
]
