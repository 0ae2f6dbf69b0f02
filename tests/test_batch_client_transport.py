"""The batch client on the shared transport (issue 20): no HTTP stack of its own, the same
proxy rule as live calls, typed errors behind its one-line messages."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from pydantic import SecretStr

from batch_server import BatchServer
from llm_aug.core.errors import UserError
from llm_aug.llm.batch.client import BatchClient
from llm_aug.llm.transports.aiohttp_transport import AiohttpTransport
from llm_aug.llm.types import BadRequest, NotFound, Unreachable
from llm_server import dead_url

KEY = SecretStr("sk-batch-transport-key")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


async def _submit_and_fetch(client: BatchClient, path) -> tuple[dict, bytes]:
    async with client:
        file_id = await client.upload(path)
        batch = await client.create_batch(file_id)
        return await client.get_batch(batch["id"]), await client.content(file_id)


def test_every_call_goes_through_the_transport_and_its_one_session(tmp_path, monkeypatch):
    requests, sessions = [], []
    real_request, real_init = AiohttpTransport.request, aiohttp.ClientSession.__init__

    async def spy(self, req):
        requests.append((req.method, req.path))
        return await real_request(self, req)

    def counting_init(self, *args, **kwargs):
        sessions.append(self)
        real_init(self, *args, **kwargs)
    monkeypatch.setattr(AiohttpTransport, "request", spy)
    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting_init)
    lines = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
    (tmp_path / "requests-c1-000.jsonl").write_bytes(lines)
    with BatchServer() as server:
        batch, content = asyncio.run(_submit_and_fetch(BatchClient(server.url, KEY),
                                                       tmp_path / "requests-c1-000.jsonl"))
        assert batch["status"] == "completed" and content == lines
        assert server.auth_headers == [f"Bearer {KEY.get_secret_value()}"] * 4
    assert requests == [("POST", "/files"), ("POST", "/batches"), ("GET", f"/batches/{batch['id']}"),
                        ("GET", f"/files/{batch['input_file_id']}/content")]
    assert len(sessions) == 1  # the transport's; the client builds none of its own


def test_an_environment_proxy_carries_a_remote_base_url_as_for_live_calls(no_proxy_env):
    # The loopback batch server stands in for the proxy: a plain-HTTP proxy gets the full URL.
    with BatchServer() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url.removesuffix("/v1"))

        async def poll() -> None:
            async with BatchClient("http://batches.example.invalid/v1", None,
                                   allow_remote=True) as client:
                await client.get_batch("batch_nope")
        with pytest.raises(UserError) as info:
            asyncio.run(poll())
        # The proxy (not DNS for the invalid host) answered: its 404 came back.
        assert "HTTP 404" in str(info.value) and proxy.auth_headers == [""]


def test_an_error_status_is_the_same_line_with_a_typed_cause():
    with BatchServer() as server:
        async def calls() -> list[UserError]:
            errors = []
            async with BatchClient(server.url, KEY) as client:
                for call in (client.get_batch("batch_nope"), client.create_batch("file-nope")):
                    try:
                        await call
                    except UserError as exc:
                        errors.append(exc)
            return errors
        missing, bad = asyncio.run(calls())
    body = json.dumps({"error": {"message": "no such batch"}})
    assert str(missing) == f"GET {server.url}/batches/batch_nope: HTTP 404: {body}"
    assert isinstance(missing.__cause__, NotFound)
    body = json.dumps({"error": {"message": "bad batch request"}})
    assert str(bad) == f"POST {server.url}/batches: HTTP 400: {body}"
    assert type(bad.__cause__) is BadRequest


def test_no_server_is_one_line_naming_the_call_and_the_typed_error(no_proxy_env):
    url = dead_url()

    async def poll() -> None:
        async with BatchClient(url, KEY) as client:
            await client.get_batch("batch_1")
    with pytest.raises(UserError) as info:
        asyncio.run(poll())
    assert str(info.value) == (f"GET {url}/batches/batch_1: Unreachable: cannot reach {url}: "
                               "connection refused; is the server running?")
    assert isinstance(info.value.__cause__, Unreachable)
