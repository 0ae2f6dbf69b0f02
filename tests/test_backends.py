"""OpenAI-compatible backend against the loopback server, payloads, parsing, config, factory."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess

import pytest
from pydantic import SecretStr, ValidationError

from llm_aug.llm.backends import make_backend
from llm_aug.llm.backends.fake import FakeBackend
from llm_aug.llm.backends.openai_compat import (
    OpenAICompatBackend,
    build_payload,
    error_from_status,
    parse_completion,
    retry_after_s,
)
from llm_aug.llm.config import LLMConfig, OpenAIBackendConfig
from llm_aug.llm.types import (
    AuthError,
    BackendError,
    BadRequest,
    ChatRequest,
    ConnectionDropped,
    MalformedResponse,
    RateLimited,
    SamplingParams,
    ServerError,
    Timeout,
    user_messages,
)
from llm_server import LLMServer

SCHEMA = {"type": "object", "properties": {"label": {"type": "integer"}}, "required": ["label"]}


def req(i: int = 0, n: int = 1, schema: dict | None = None, seed: int | None = None) -> ChatRequest:
    return ChatRequest(id=f"r{i}", messages=user_messages(f"帖子 {i}", system="判断风险"),
                       params=SamplingParams(n=n, seed=seed, max_tokens=8), json_schema=schema)


@pytest.fixture
def server():
    with LLMServer(record=True, hang_s=3) as srv:
        yield srv


def run(coro):
    return asyncio.run(coro)


async def _generate(backend, requests):
    try:
        return await backend.generate(requests)
    finally:
        await backend.aclose()


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_both_clients_send_the_same_request_and_parse_n_samples(server, client, monkeypatch):
    monkeypatch.setenv("LLM_AUG_API_KEY", "sk-test-abcdef123456")
    backend = OpenAICompatBackend("qwen", server.url, client=client, timeout_s=5)
    [gens] = run(_generate(backend, [req(1, n=3, schema=SCHEMA, seed=7)]))
    assert [g.index for g in gens] == [0, 1, 2]
    assert all(json.loads(g.text)["label"] in range(11) for g in gens)
    assert sum(g.completion_tokens for g in gens) == sum(len(g.text) for g in gens)
    headers, body = server.recorded[-1]
    assert headers["authorization"] == "Bearer sk-test-abcdef123456"
    assert body["n"] == 3 and body["seed"] == 7 and body["max_tokens"] == 8
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["messages"][0] == {"role": "system", "content": "判断风险"}


def test_http_and_sdk_clients_give_identical_generations(server):
    outs = [run(_generate(OpenAICompatBackend("m", server.url, client=c), [req(3, n=2)]))
            for c in ("http", "sdk")]
    assert outs[0] == outs[1]


def test_results_come_back_in_input_order_with_keepalive(server):
    backend = OpenAICompatBackend("m", server.url, max_connections=4)

    async def many():
        try:
            return await asyncio.gather(*(backend.generate([req(i)]) for i in range(40)))
        finally:
            await backend.aclose()
    results = run(many())
    assert [r[0][0].request_id for r in results] == [f"r{i}" for i in range(40)]
    assert server.request_count == 40


@pytest.mark.parametrize("fault,error", [
    ("429", RateLimited), ("500", ServerError), ("400", BadRequest), ("401", AuthError),
    ("malformed", MalformedResponse), ("wrong_content", MalformedResponse),
    ("html", MalformedResponse), ("truncated", ConnectionDropped), ("drop", ConnectionDropped),
    ("hang", Timeout),
])
@pytest.mark.parametrize("client", ["http", "sdk"])
def test_faults_map_to_backend_errors(server, fault, error, client):
    server.script(fault)
    backend = OpenAICompatBackend("m", server.url, client=client, timeout_s=0.5)
    with pytest.raises(error) as info:
        run(_generate(backend, [req()]))
    assert info.value.retryable == (error not in (BadRequest, AuthError))


def test_rate_limit_carries_retry_after(server):
    server.retry_after_s = 0.25
    server.script("429")
    with pytest.raises(RateLimited) as info:
        run(_generate(OpenAICompatBackend("m", server.url), [req()]))
    assert info.value.retry_after == pytest.approx(0.25)


def test_retry_after_header_forms():
    assert retry_after_s({"Retry-After": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert 0 <= retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) <= 0.0 + 1e-9
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None


def test_error_from_status_reads_the_error_message():
    err = error_from_status(503, {}, b'{"error": {"message": "overloaded"}}')
    assert isinstance(err, ServerError) and "overloaded" in str(err) and err.status == 503
    assert isinstance(error_from_status(404, {}, b"no such model"), BadRequest)
    assert isinstance(error_from_status(403, {}, b""), AuthError)


@pytest.mark.parametrize("mode,field", [("structured_outputs", "structured_outputs"),
                                        ("guided_json", "guided_json")])
def test_vllm_structured_output_fields(mode, field):
    payload = build_payload("m", req(schema=SCHEMA), mode, extra_body={"top_k": 5})
    assert field in payload and "response_format" not in payload and payload["top_k"] == 5
    assert "n" not in payload and "seed" not in payload  # defaults are left to the server
    assert "response_format" not in build_payload("m", req(schema=SCHEMA), "none")


def test_parse_completion_without_usage_estimates_tokens():
    body = json.dumps({"choices": [{"index": 0, "message": {"content": "高风险"}}]}).encode()
    [g] = parse_completion(req(), body, "application/json")
    assert g.text == "高风险" and g.completion_tokens == 3 and g.prompt_tokens > 0


def test_connection_refused_is_retryable():
    backend = OpenAICompatBackend("m", "http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(ConnectionDropped):
        run(_generate(backend, [req()]))


def test_two_event_loops_reuse_one_backend(server):
    backend = OpenAICompatBackend("m", server.url)
    first = run(backend.generate([req(1)]))
    second = run(backend.generate([req(1)]))  # the old loop's pool must not be reused
    assert first == second


def test_config_rejects_unknown_keys_and_hides_the_key(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-from-env-999999")
    cfg = OpenAIBackendConfig(model="m", api_key_env="MY_KEY")
    assert cfg.api_key == SecretStr("sk-from-env-999999")
    assert "sk-from-env" not in cfg.model_dump_json() and "sk-from-env" not in repr(cfg)
    with pytest.raises(ValidationError):
        OpenAIBackendConfig(model="m", temprature=0.3)
    with pytest.raises(ValidationError):
        LLMConfig.model_validate({"backend": {"kind": "nope", "model": "m"}})


def test_make_backend_from_dict(server):
    backend = make_backend({"kind": "openai", "model": "m", "base_url": server.url})
    assert isinstance(backend, OpenAICompatBackend) and backend.describe()["client"] == "http"
    fake = make_backend({"kind": "fake", "replies": {"帖子": "3", "": "0"}})
    [[g]] = run(fake.generate([req()]))
    assert g.text == "3"


def test_fake_backend_scripts_and_failures():
    fake = FakeBackend(["a", "b"], failures=[ServerError("boom"), None])
    with pytest.raises(ServerError):
        run(fake.generate([req()]))
    [[g]] = run(fake.generate([req(n=1)]))
    assert g.text == "a" and fake.calls == 2
    echo = FakeBackend(lambda r, i: f"{r.id}-{i}")
    [gens] = run(echo.generate([req(5, n=2)]))
    assert [g.text for g in gens] == ["r5-0", "r5-1"]


def test_remote_base_url_is_refused_without_opt_in():
    with pytest.raises(Exception, match="allow-remote"):
        OpenAICompatBackend("m", "https://api.example.com/v1")
    OpenAICompatBackend("m", "https://api.example.com/v1", allow_remote=True)


@pytest.mark.parametrize("client", ["http", "sdk"])
def test_chunked_responses_arriving_in_pieces(client):
    with LLMServer(chunked=True) as srv:
        outs = run(_generate(OpenAICompatBackend("m", srv.url, client=client),
                             [req(2, n=2, schema=SCHEMA)]))
    assert [json.loads(g.text)["index"] for g in outs[0]] == [0, 1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_a_custom_ca(tmp_path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with LLMServer(ssl_context=context) as srv:
        assert srv.url.startswith("https://")
        with pytest.raises(BackendError, match="SSL_CERT_FILE") as info:
            run(_generate(OpenAICompatBackend("m", srv.url), [req()]))
        assert not info.value.retryable
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how users trust a private CA
        [[g]] = run(_generate(OpenAICompatBackend("m", srv.url), [req()]))
    assert g.text.startswith("echo ")
