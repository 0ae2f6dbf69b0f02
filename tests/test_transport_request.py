"""The Transport seam's generic request (issue 20): GET, JSON POST and multipart, on both
transports and through the router, against the loopback Files/Batches server; no redirect
followed; status codes left to the caller."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from batch_server import BatchServer
from llm_aug.llm.http_errors import error_from_status
from llm_aug.llm.transports import make_transport
from llm_aug.llm.transports.base import FormField, HTTPRequest, HTTPResponse, Transport
from llm_aug.llm.transports.routing import RoutingTransport
from llm_aug.llm.types import ConnectionDropped, NotFound, Unreachable
from llm_server import LLMServer, dead_url

CLIENTS = ["http", pytest.param("sdk", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("openai") is None, reason="openai not installed"))]
KEY = SecretStr("sk-test-request-key")
LINES = b'{"custom_id": "a", "body": {}}\n{"custom_id": "\xe5\xb8\x96", "body": {}}\n'


def _upload() -> HTTPRequest:
    return HTTPRequest("POST", "/files", multipart=(
        FormField("purpose", "batch"),
        FormField("file", LINES, filename="requests-c1-000.jsonl", content_type="application/jsonl")))


async def _round_trip(transport: Transport) -> list[HTTPResponse]:
    """Upload, create a batch, read it back and download the uploaded file: four requests."""
    try:
        uploaded = await transport.request(_upload())
        file_id = json.loads(uploaded.body)["id"]
        body = json.dumps({"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                           "completion_window": "24h"}).encode()
        created = await transport.request(HTTPRequest("POST", "/batches", body=body))
        batch_id = json.loads(created.body)["id"]
        got = await transport.request(HTTPRequest("GET", f"/batches/{batch_id}"))
        content = await transport.request(HTTPRequest("GET", f"/files/{file_id}/content"))
        return [uploaded, created, got, content]
    finally:
        await transport.aclose()


@pytest.mark.parametrize("client", CLIENTS)
def test_get_json_post_and_multipart_reach_the_server_as_sent(client):
    with BatchServer() as server:
        transport = make_transport(client, server.url, api_key=KEY)
        uploaded, created, got, content = asyncio.run(_round_trip(transport))
        assert [r.status for r in (uploaded, created, got, content)] == [200] * 4
        file_id = json.loads(uploaded.body)["id"]
        # Multipart arrived as fields: the server read purpose=batch and the file's name and bytes.
        assert json.loads(uploaded.body)["filename"] == "requests-c1-000.jsonl"
        assert server.files[file_id] == LINES and content.body == LINES
        assert json.loads(created.body)["input_file_id"] == file_id
        assert json.loads(got.body)["status"] == "completed"
        assert content.headers["content-type"].startswith("application/jsonl")
        assert server.auth_headers == [f"Bearer {KEY.get_secret_value()}"] * 4


@pytest.mark.parametrize("client", CLIENTS)
def test_an_error_status_comes_back_as_a_response_for_the_shared_mapping(client):
    with BatchServer() as server:
        async def missing() -> HTTPResponse:
            transport = make_transport(client, server.url)
            try:
                return await transport.request(HTTPRequest("GET", "/batches/batch_nope"))
            finally:
                await transport.aclose()
        response = asyncio.run(missing())
    assert response.status == 404
    error = error_from_status(response.status, response.headers, response.body)
    assert isinstance(error, NotFound) and str(error) == "HTTP 404: no such batch"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_request_does_not_follow_a_redirect(client, method):
    with LLMServer() as target, LLMServer() as redirector:
        redirector.redirect_to = target.url

        async def go() -> HTTPResponse:
            transport = make_transport(client, redirector.url)
            try:
                body = b"{}" if method == "POST" else None
                return await transport.request(HTTPRequest(method, "/batches/batch_1", body=body))
            finally:
                await transport.aclose()
        response = asyncio.run(go())
        assert response.status == 307 and response.headers["location"] == target.url + "/batches/batch_1"
        assert target.request_count == 0 and redirector.request_count == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_no_server_is_a_typed_network_error(client):
    async def go() -> None:
        transport = make_transport(client, dead_url())
        try:
            await transport.request(HTTPRequest("GET", "/batches/x"))
        finally:
            await transport.aclose()
    with pytest.raises(ConnectionDropped) as info:
        asyncio.run(go())
    if client == "http":  # the SDK's connection errors are ConnectionDropped, without detail
        assert isinstance(info.value, Unreachable) and "connection refused" in str(info.value)


def test_the_router_fails_a_generic_request_over_from_a_dead_endpoint():
    with BatchServer() as server:
        dead = dead_url()
        router = RoutingTransport([(url, make_transport("http", url)) for url in (dead, server.url)])

        async def twice() -> list[HTTPResponse]:
            try:
                return [await router.request(_upload()) for _ in range(2)]
            finally:
                await router.aclose()
        responses = asyncio.run(twice())
        assert [r.status for r in responses] == [200, 200] and len(server.files) == 2
        stats = router.stats()
        assert stats[dead]["dead"] and stats[dead]["sent"] == 1 and stats[server.url]["sent"] == 2


def test_request_shapes_are_checked():
    with pytest.raises(ValueError, match="body or multipart"):
        HTTPRequest("POST", "/files", body=b"{}", multipart=(FormField("purpose", "batch"),))
    with pytest.raises(ValueError, match="GET"):
        HTTPRequest("GET", "/files", body=b"{}")
    with pytest.raises(ValueError, match="method"):
        HTTPRequest("PATCH", "/files")  # type: ignore[arg-type]
