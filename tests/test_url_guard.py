"""Base URLs that must not pass: credentials in the URL, numeric host shorthands, and
servers that redirect (issue 19, part 5; link-local hosts are in test_proxy_guard.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from clirun import invoke
from conftest import DEMO
from llm_aug.core.errors import UserError
from llm_aug.llm import load_llm_config
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.batch.client import BatchClient
from llm_aug.llm.privacy import check_base_url, without_userinfo
from llm_aug.llm.types import RunAborted
from llm_server import LLMServer

PASSWORD = "sk-url-canary-7f3a9c"


def _classify_argv(url: str, out, *extra: str) -> list[str]:
    return ["classify", "--task", "fine", "--input", str(DEMO / "val.tsv"), "--output", str(out),
            "--backend", "openai", "--base-url", url, "--model", "m", "--concurrency", "2", *extra]


def test_a_base_url_with_credentials_is_one_line_exit_2_and_writes_nothing(tmp_path):
    out = tmp_path / "run" / "p.jsonl"
    url = f"http://user:{PASSWORD}@127.0.0.1:9/v1"
    res = subprocess.run([sys.executable, "-m", "llm_aug", "-v", *_classify_argv(url, out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1 and "credentials" in res.stderr, res.stderr
    assert PASSWORD not in res.stderr + res.stdout
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("url", [f"http://user:{PASSWORD}@127.0.0.1:8000/v1",
                                 f"http://{PASSWORD}@localhost:8000/v1", "http://@127.0.0.1/v1"])
def test_credentials_are_refused_by_config_backend_and_batch_client(url):
    for build in (lambda: load_llm_config({"backend": {"kind": "openai", "model": "m", "base_url": url}}),
                  lambda: load_llm_config({"backend": {"kind": "openai", "model": "m",
                                                       "base_url": ["http://127.0.0.1:1/v1", url]}}),
                  lambda: OpenAICompatBackend("m", url),
                  lambda: BatchClient(url, None)):
        with pytest.raises(UserError, match="credentials") as info:
            build()
        assert PASSWORD not in str(info.value)
    assert PASSWORD not in without_userinfo(url) and without_userinfo(url).endswith("/v1")


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f000001", "0177.0.0.1", "0x7f.1"])
def test_numeric_ipv4_shorthands_are_refused_naming_the_dotted_form(host):
    with pytest.raises(UserError, match=r"write it as 127\.0\.0\.1"):
        check_base_url(f"http://{host}:8000/v1", allow_remote=True)
    res = invoke(*_classify_argv(f"http://{host}:8000/v1", "p.jsonl"))
    assert isinstance(res.exception, UserError) and "127.0.0.1" in str(res.exception)


def test_names_that_start_with_a_digit_are_still_names():
    check_base_url("http://1e100.net/v1", allow_remote=True)
    check_base_url("http://10.0.0.7:8000/v1")


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_a_redirecting_server_stops_the_run_and_nothing_goes_to_the_target(tmp_path, client):
    out = tmp_path / "p.jsonl"
    with LLMServer() as target, LLMServer() as redirector:
        redirector.redirect_to = target.url
        config = tmp_path / "llm.yaml"
        config.write_text(f"backend:\n  kind: openai\n  model: m\n  base_url: {redirector.url}\n"
                          f"  client: {client}\nrunner:\n  concurrency: 2\n", encoding="utf-8")
        res = invoke("classify", "--task", "fine", "--input", DEMO / "val.tsv", "--output", out,
                     "--llm-config", config)
        assert isinstance(res.exception, RunAborted), (res.stderr, res.exception)
        assert "redirect" in str(res.exception) and target.url in str(res.exception)
        assert target.request_count == 0
        assert 1 <= redirector.request_count <= 2  # stopped at once, not retried
    assert not out.exists()


def test_the_batch_client_does_not_follow_redirects():
    with LLMServer() as target, LLMServer() as redirector:
        redirector.redirect_to = target.url

        async def poll() -> None:
            async with BatchClient(redirector.url, None) as client:
                await client.get_batch("batch_1")
        with pytest.raises(UserError, match="redirect"):
            asyncio.run(poll())
        assert target.request_count == 0 and redirector.request_count == 1
