"""Endpoint policy and keeping API keys out of logs, outputs, caches and errors."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from llm_aug.core.errors import UserError
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import LLMConfig, RunnerConfig
from llm_aug.llm.privacy import RemoteNotAllowed, check_base_url, redact, register_secret
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import BackendError, ChatRequest, user_messages
from llm_server import LLMServer

CANARY = "sk-canary-7f3a9c1e5b2d4680"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
    "http://10.1.2.3/v1", "http://192.168.0.7:8080/v1", "http://172.16.5.4/v1",
])
def test_local_and_private_endpoints_are_allowed(url):
    check_base_url(url)


@pytest.mark.parametrize("url", ["https://8.8.8.8/v1", "https://api.openai.com/v1",
                                 "http://no-such-host.invalid/v1",
                                 "http://169.254.169.254/v1", "http://[fe80::1]:8000/v1"])
def test_remote_endpoints_need_opt_in(url):
    with pytest.raises(RemoteNotAllowed, match="allow-remote"):
        check_base_url(url)
    check_base_url(url, allow_remote=True)


def test_malformed_base_url_is_a_user_error():
    with pytest.raises(UserError, match="http"):
        check_base_url("ftp://127.0.0.1/v1")


def test_short_placeholder_keys_do_not_redact_words():
    register_secret("EMPTY")
    assert redact("EMPTY response") == "EMPTY response"


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_api_key_appears_nowhere(tmp_path, monkeypatch, caplog, client):
    monkeypatch.setenv("LLM_AUG_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    out, cache = tmp_path / "out.jsonl", tmp_path / "cache.sqlite"
    with LLMServer(record=True) as server:
        server.error_echo = f"Incorrect API key provided: {CANARY}"  # as real APIs do
        # ok first: a 401 before any success stops the run (test_fail_fast.py checks that)
        server.script("ok", "401", "500", "500", "500", "500")
        config = LLMConfig.model_validate(
            {"backend": {"kind": "openai", "model": "m", "base_url": server.url,
                         "client": client},
             "runner": {"concurrency": 1, "max_retries": 1, "backoff_initial_s": 0.01,
                        "cache_path": str(cache), "quiet": True}})
        backend = OpenAICompatBackend(
            config.backend.model, config.backend.base_url, api_key=config.backend.api_key,
            client=client)
        requests = [ChatRequest(id=f"i{i}", messages=user_messages(f"帖子{i}")) for i in range(4)]
        summary = Runner(backend, config.runner).run(requests, out)
        assert server.recorded[0][0]["authorization"] == f"Bearer {CANARY}"  # it was sent

        server.script("500")
        with pytest.raises(BackendError) as info:
            asyncio.run(OpenAICompatBackend("m", server.url, client=client).generate(requests[:1]))
    assert summary.n_failed == 3 and "Incorrect API key" in summary.rows[1].error
    logging.getLogger("llm_aug.llm.runner").warning("leak attempt %s", CANARY)
    places = {
        "results": out.read_text(encoding="utf-8"),
        "cache": b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*")).decode("latin-1"),
        "logs": caplog.text,
        "manifest": json.dumps(summary.to_manifest()) + json.dumps(config.model_dump(mode="json")),
        "rows": " ".join(str(r.error) for r in summary.rows),
        "error": str(info.value) + repr(info.value),
        "config": repr(config) + str(config),
    }
    leaked = [name for name, text in places.items() if CANARY in text]
    assert not leaked
    assert "***" in places["results"] and "***" in places["logs"]


def test_runner_config_has_no_secrets_field():
    assert not any("key" in name for name in RunnerConfig.model_fields)
