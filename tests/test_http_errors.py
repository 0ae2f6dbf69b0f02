"""Typed HTTP errors (issue 20): one status mapping for the backend, the batch client and the
langchain adapter; the run stops by type, not by status number; messages unchanged."""

from __future__ import annotations

import pytest

from batch_server import BatchServer
from llm_aug.llm.backends import langchain as langchain_backend
from llm_aug.llm.backends import openai_compat
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.http_errors import error_for_status, error_from_status
from llm_aug.llm.run_state import stops_the_run
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import (
    AuthError,
    BadRequest,
    ChatRequest,
    Forbidden,
    NotFound,
    RateLimited,
    Redirected,
    RunAborted,
    ServerError,
    Timeout,
    Unauthorized,
    error_name,
    user_messages,
)

BODY = b'{"error": {"message": "the reason"}}'


@pytest.mark.parametrize("status, cls, parents", [
    (400, BadRequest, ()), (401, Unauthorized, (AuthError,)), (403, Forbidden, (AuthError,)),
    (404, NotFound, (BadRequest,)), (408, Timeout, ()), (409, BadRequest, ()),
    (422, BadRequest, ()), (429, RateLimited, ()), (500, ServerError, ()), (503, ServerError, ()),
])
def test_each_status_maps_to_its_type_with_the_same_message(status, cls, parents):
    error = error_from_status(status, {"retry-after": "2"}, BODY)
    assert type(error) is cls and all(isinstance(error, p) for p in parents)
    assert str(error) == f"HTTP {status}: the reason" and error.status == status
    if cls is RateLimited:
        assert error.retry_after == 2.0
    assert error.retryable == (cls in (Timeout, RateLimited, ServerError))


def test_a_redirect_names_its_target_without_credentials():
    error = error_from_status(307, {"location": "http://user:pw@10.0.0.9/v1"}, b"")
    assert isinstance(error, Redirected) and error.status == 307
    assert "'http://***@10.0.0.9/v1'" in str(error) and "pw" not in str(error)


def test_the_backend_module_keeps_its_names_for_the_shared_mapping():
    assert openai_compat.error_from_status is error_from_status


@pytest.mark.parametrize("error, stops", [
    (NotFound("HTTP 404: x", status=404), True), (Unauthorized("x", status=401), True),
    (Forbidden("x", status=403), True), (BadRequest("HTTP 400: x", status=400), False),
    (BadRequest("HTTP 422: x", status=422), False), (ServerError("x", status=503), False),
])
def test_the_run_stops_by_type(error, stops):
    assert stops_the_run(error) is stops


def test_a_404_from_a_real_server_stops_the_run_naming_the_model_flag(tmp_path):
    # No such path (/v2): the server answers 404 to every request, as to a wrong --model.
    with BatchServer() as server:
        url = server.url.replace("/v1", "/v2")
        requests = [ChatRequest(id=f"i{k}", messages=user_messages("帖子")) for k in range(5)]
        with pytest.raises(RunAborted, match="HTTP 404: .*check --model") as info:
            Runner(OpenAICompatBackend("m", url), RunnerConfig(concurrency=1)).run(
                requests, tmp_path / "out.jsonl")
        assert isinstance(info.value.cause, NotFound)
        assert server.chat_requests == 0


class _ProviderError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status_code = status


@pytest.mark.parametrize("status, cls", [(404, NotFound), (401, Unauthorized), (429, RateLimited),
                                         (500, ServerError), (400, BadRequest)])
def test_the_langchain_adapter_uses_the_same_types(status, cls):
    error = langchain_backend._error(_ProviderError(status))
    assert type(error) is cls and str(error) == f"_ProviderError: status {status}"
    assert type(error_for_status(status, "m")) is cls


@pytest.mark.parametrize("error, name", [
    (NotFound("x"), "BadRequest"), (Unauthorized("x"), "AuthError"), (Forbidden("x"), "AuthError"),
    (BadRequest("x"), "BadRequest"), (RateLimited("x"), "RateLimited"), (ValueError("x"), "ValueError"),
])
def test_rows_and_summaries_name_the_finer_types_as_before(error, name):
    assert error_name(error) == name
