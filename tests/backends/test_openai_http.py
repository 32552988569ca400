"""The HTTP backend against a real OpenAI-compatible server on loopback."""

import socket

import pytest

from rung.backends.openai_http import OpenAIBackend
from rung.config import OpenAIBackendConfig
from rung.errors import BackendTimeout, BackendUnavailable, UpstreamError
from rung.types import ChatRequest, Message
from tests.conftest import LiveServer, behaviour

REQ = ChatRequest(messages=(Message("user", "say hi"),), max_tokens=50)


def _backend(url: str, **kw: object) -> OpenAIBackend:
    return OpenAIBackend("up", OpenAIBackendConfig(type="openai", base_url=f"{url}/v1",
                                                   model="m", **kw))  # type: ignore[arg-type]


async def _collect(backend: OpenAIBackend, req: ChatRequest) -> tuple[str, object]:
    text, last = "", None
    async for c in backend.stream(req):
        text += c.text
        last = c
    await backend.aclose()
    return text, last


@pytest.mark.parametrize("stream", [False, True])
async def test_answer_and_usage(upstream: LiveServer, stream: bool) -> None:
    req = ChatRequest(messages=REQ.messages, max_tokens=50, stream=stream)
    text, last = await _collect(_backend(upstream.url), req)
    assert text == "Hello from the upstream."
    assert last.finish_reason == "stop"  # type: ignore[attr-defined]
    assert last.usage.completion_tokens == 4  # type: ignore[attr-defined]


async def test_error_status_is_wrapped(upstream: LiveServer) -> None:
    behaviour(upstream).fail_status = 500
    with pytest.raises(UpstreamError) as info:
        await _collect(_backend(upstream.url), REQ)
    assert info.value.retryable and info.value.upstream_status == 500
    behaviour(upstream).fail_status = 400
    with pytest.raises(UpstreamError) as info:
        await _collect(_backend(upstream.url), REQ)
    assert not info.value.retryable


async def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable):
        await _collect(_backend(f"http://127.0.0.1:{port}"), REQ)


async def test_slow_upstream_times_out(upstream: LiveServer) -> None:
    behaviour(upstream).delay_s = 2.0
    with pytest.raises(BackendTimeout):
        await _collect(_backend(upstream.url, timeout_s=0.2), REQ)


async def test_api_key_is_sent(upstream: LiveServer) -> None:
    backend = _backend(upstream.url, api_key="sk-test")
    assert backend._headers["Authorization"] == "Bearer sk-test"
    text, _ = await _collect(backend, REQ)
    assert text


def test_a_json_schema_goes_upstream_with_the_clients_name_and_strict_flag() -> None:
    from rung.backends.openai_http import request_body
    from rung.types import ResponseFormat

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    req = ChatRequest(messages=(Message("user", "hi"),),
                      response_format=ResponseFormat("json_schema", schema, name="A", strict=True))
    assert request_body("m", req, stream=False)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}
    unnamed = ChatRequest(messages=(Message("user", "hi"),),
                          response_format=ResponseFormat("json_schema", schema))
    assert request_body("m", unnamed, stream=False)["response_format"]["json_schema"] == {
        "name": "schema", "schema": schema}
