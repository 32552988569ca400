"""Tool calling through upstream tiers, driven by the official openai SDK: the request's
tools reach the upstream intact, its tool calls come back as the SDK expects (whole and
streamed), bad tool input is a 400 naming the parameter, and the embedded local model
makes forced calls and reads tool results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from rung.devtools.upstream import UpstreamBehaviour
from rung.store.sqlite import SqliteStore
from rung.types import ToolCall
from tests.conftest import (
    LiveServer,
    body_with,
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}
CALL = ToolCall("call_w1", "get_weather", '{"city": "Paris", "unit": "celsius"}')
USER = {"role": "user", "content": "Weather in Paris?"}


@contextmanager
def gateway(calls: list[ToolCall], *, store: Path | None = None,
            reply: str = "It is sunny in Paris.") -> Iterator[tuple[LiveServer, UpstreamBehaviour]]:
    """rung over one upstream tier "up" that calls ``calls`` when given tools."""
    b = UpstreamBehaviour(reply=reply, tool_calls=calls)
    with upstream_server(b) as up, \
            rung_server(config_of(tiers=[upstream_tier("up", up.url)]), store=store) as server:
        yield server, b


def _client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_sdk_tool_call_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    with gateway([CALL], store=db) as (server, up):
        client = _client(server)
        first = client.chat.completions.create(
            model="up", messages=[USER], tools=[WEATHER], tool_choice="auto",  # type: ignore[list-item]
            parallel_tool_calls=False)
        assert up.last_body is not None
        assert up.last_body["tools"] == [WEATHER]  # intact, strict and schema included
        assert up.last_body["tool_choice"] == "auto"
        assert up.last_body["parallel_tool_calls"] is False
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.type == "function" and call.id == "call_w1"
        assert call.function.name == "get_weather"  # type: ignore[union-attr]
        assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}  # type: ignore[union-attr]

        # The SDK's own message object goes back as the assistant turn, then the result.
        result = {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"}
        second = client.chat.completions.create(
            model="up", messages=[USER, choice.message, result],  # type: ignore[list-item]
            tools=[WEATHER])  # type: ignore[list-item]
        assert second.choices[0].message.content == "It is sunny in Paris."
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.tool_calls is None
        assert up.last_body["messages"] == [
            USER,
            {"role": "assistant", "content": None, "tool_calls": [CALL.as_dict()]},
            {"role": "tool", "content": "sunny, 24 C", "tool_call_id": "call_w1"},
        ]
        assert "tool_choice" not in up.last_body and "parallel_tool_calls" not in up.last_body
    store = SqliteStore(db)
    traces = sorted(store.query(), key=lambda t: t.time)
    store.close()
    assert [t.messages for t in traces] == [
        [USER],  # a turn without tools keeps the shape traces always had
        [USER, {"role": "assistant", "content": "", "tool_calls": [CALL.as_dict()]},
         {"role": "tool", "content": "sunny, 24 C", "tool_call_id": "call_w1"}]]


def test_sdk_streaming_tool_calls_are_assembled_by_the_sdk() -> None:
    calls = [CALL, ToolCall("call_t2", "get_time", "{}")]
    with gateway(calls) as (server, up):
        client = _client(server)
        forced = {"type": "function", "function": {"name": "get_weather"}}
        with client.chat.completions.stream(
                model="up", messages=[USER], tools=[WEATHER, CLOCK],  # type: ignore[list-item]
                tool_choice=forced) as stream:  # type: ignore[arg-type]
            final = stream.get_final_completion()
        assert up.last_body is not None and up.last_body["tool_choice"] == forced
        assert up.last_body["stream"] is True
        choice = final.choices[0]
        assert choice.finish_reason == "tool_calls"
        got = [(c.id, c.function.name, c.function.arguments)  # type: ignore[union-attr]
               for c in choice.message.tool_calls or []]
        assert got == [(c.id, c.name, c.arguments) for c in calls]

        # OpenAI's delta shape: id, type and name once, then argument fragments.
        chunks = list(client.chat.completions.create(
            model="up", messages=[USER], tools=[WEATHER, CLOCK], stream=True,  # type: ignore[list-item]
            stream_options={"include_usage": True}))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        firsts = [d for d in deltas if d.id is not None]
        assert [(d.index, d.id, d.type, d.function.name, d.function.arguments)  # type: ignore[union-attr]
                for d in firsts] == [(0, "call_w1", "function", "get_weather", ""),
                                     (1, "call_t2", "function", "get_time", "")]
        rest = [d for d in deltas if d.id is None]
        assert rest and all(d.function.name is None for d in rest)  # type: ignore[union-attr]
        assert "".join(d.function.arguments or "" for d in rest if d.index == 0) == CALL.arguments  # type: ignore[union-attr]
        state = ChatCompletionStreamState()
        for c in chunks:
            state.handle_chunk(c)
        assembled = state.get_final_completion().choices[0].message.tool_calls or []
        assert [c.function.arguments for c in assembled] == [CALL.arguments, "{}"]
        assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_text_answers_are_unchanged_when_tools_are_offered() -> None:
    with gateway([], reply="No tool needed.") as (server, up):
        r = _client(server).chat.completions.create(
            model="up", messages=[USER], tools=[WEATHER], tool_choice="none")  # type: ignore[list-item]
        assert r.choices[0].message.content == "No tool needed."
        assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"
        assert up.last_body is not None and up.last_body["tool_choice"] == "none"


@pytest.mark.parametrize(("response_format", "tier", "call_id"), [
    ({"type": "text"}, "small", "call_small"),  # verified, buffered, then replayed
    ({"type": "json_object"}, "big", "call_w1"),  # no JSON text: rejected, escalated
])
def test_tool_calls_pass_through_the_alias_cascade(response_format: dict[str, str], tier: str,
                                                   call_id: str) -> None:
    """The JSON verifier reads only text: a call passes it when JSON was not asked for,
    and is rejected (the next tier answers) when it was; the answering tier's call
    reaches the client whole, streamed or not."""
    small = UpstreamBehaviour(tool_calls=[ToolCall("call_small", "get_weather", "{}")])
    big = UpstreamBehaviour(tool_calls=[CALL])
    with upstream_server(small) as a, upstream_server(big) as b:
        cfg = config_of(tiers=[upstream_tier("small", a.url) | {"verifiers": [{"type": "json"}]},
                               upstream_tier("big", b.url)])
        with rung_server(cfg) as server:
            client = _client(server)
            raw = client.chat.completions.with_raw_response.create(
                model="rung", messages=[USER], tools=[WEATHER],  # type: ignore[list-item]
                response_format=response_format)  # type: ignore[arg-type]
            r = raw.parse()
            assert raw.headers["x-rung-tier"] == tier
            assert r.choices[0].finish_reason == "tool_calls"
            assert [c.id for c in r.choices[0].message.tool_calls or []] == [call_id]
            with client.chat.completions.stream(
                    model="rung", messages=[USER], tools=[WEATHER],  # type: ignore[list-item]
                    response_format=response_format) as stream:  # type: ignore[arg-type]
                final = stream.get_final_completion()
            assert final.choices[0].finish_reason == "tool_calls"
            assert [c.id for c in final.choices[0].message.tool_calls or []] == [call_id]
            assert small.last_body is not None and small.last_body["tools"] == [WEATHER]


def _body(**kw: Any) -> dict[str, Any]:
    return body_with({"model": "up", "messages": [USER], "tools": [WEATHER]}, **kw)


def _fn(**function: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": function}]


ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL.as_dict()]}
BAD = [
    # (name, body, param, code)
    ("tool without a name", _body(tools=_fn(parameters={"type": "object"})),
     "tools[0].function.name", "invalid_value"),
    ("name with a space", _body(tools=_fn(name="get weather")), "tools[0].function.name",
     "invalid_value"),
    ("name of 65 characters", _body(tools=_fn(name="a" * 65)), "tools[0].function.name",
     "invalid_value"),
    ("duplicate names", _body(tools=[WEATHER, WEATHER]), "tools[1].function.name",
     "invalid_value"),
    ("parameters not an object schema", _body(tools=_fn(name="f", parameters={"type": "array"})),
     "tools[0].function.parameters", "invalid_value"),
    ("parameters not a dict", _body(tools=_fn(name="f", parameters="{}")),
     "tools[0].function.parameters", "invalid_value"),
    ("tool type not function", _body(tools=[{"type": "web", "function": {"name": "f"}}]),
     "tools[0].type", "invalid_value"),
    ("unknown key in a tool", _body(tools=_fn(name="f", paramz={})),
     "tools[0].function.paramz", "unknown_parameter"),
    ("empty tools", _body(tools=[]), "tools", "invalid_value"),
    ("tool_choice names no tool", _body(tool_choice={"type": "function",
                                                     "function": {"name": "get_time"}}),
     "tool_choice", "invalid_value"),
    ("tool_choice unknown mode", _body(tool_choice="always"), "tool_choice", "invalid_value"),
    ("tool_choice malformed", _body(tool_choice={"type": "function", "name": "get_weather"}),
     "tool_choice", "invalid_value"),
    ("tool_choice not str or object", _body(tool_choice=1), "tool_choice", "invalid_value"),
    ("tool_choice without tools", _body(tools=None, tool_choice="auto"), "tool_choice",
     "invalid_value"),
    ("parallel_tool_calls without tools", _body(tools=None, parallel_tool_calls=True),
     "parallel_tool_calls", "invalid_value"),
    ("tool turn answering no call", _body(messages=[
        USER, ASKED, {"role": "tool", "tool_call_id": "call_nope", "content": "x"}]),
     "messages[2].tool_call_id", "invalid_value"),
    ("tool turn before its call", _body(messages=[
        USER, {"role": "tool", "tool_call_id": "call_w1", "content": "x"}, ASKED]),
     "messages[1].tool_call_id", "invalid_value"),
    ("tool turn without tool_call_id", _body(messages=[
        USER, ASKED, {"role": "tool", "content": "x"}]),
     "messages[2].tool_call_id", "invalid_value"),
    ("tool_calls on a user turn", _body(messages=[{**USER, "tool_calls": [CALL.as_dict()]}]),
     "messages[0].tool_calls", "invalid_value"),
    ("tool call without arguments", _body(messages=[USER, {
        "role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                             "function": {"name": "f"}}]}]),
     "messages[1].tool_calls[0].function.arguments", "invalid_value"),
    ("legacy functions", _body(tools=None, functions=[{"name": "f"}]), "functions",
     "unsupported_parameter"),
    ("legacy function_call", _body(function_call="auto"), "function_call",
     "unsupported_parameter"),
]


@pytest.fixture(scope="module")
def tool_gateway() -> Iterator[tuple[LiveServer, UpstreamBehaviour]]:
    with gateway([CALL]) as pair:
        yield pair


@pytest.mark.parametrize(("name", "body", "param", "code"), BAD, ids=[c[0] for c in BAD])
def test_bad_tool_input_is_a_400_naming_the_param(
        tool_gateway: tuple[LiveServer, UpstreamBehaviour], name: str, body: dict[str, Any],
        param: str, code: str) -> None:
    server, up = tool_gateway
    before = up.calls
    r = http("POST", f"{server.url}/v1/chat/completions", body)
    assert r.status == 400, r.body
    err = r.json()["error"]
    assert err["param"] == param and err["code"] == code, err
    assert err["type"] == "invalid_request_error" and err["message"]
    if name.startswith("legacy"):
        assert "use 'tool" in err["message"]
    assert up.calls == before  # refused at the edge


@pytest.mark.slow
@pytest.mark.parametrize("model", ["smollm2-135m", "rung"])
def test_the_embedded_model_makes_a_forced_call_through_the_sdk(smol: LiveServer,
                                                                 model: str) -> None:
    """On the embedded model, by name and through the alias: a forced call always parses
    and follows the schema (a grammar holds the sampler to it), whole and streamed."""
    client = _client(smol)
    forced = {"type": "function", "function": {"name": "get_weather"}}
    kw: dict[str, Any] = {"model": model, "messages": [USER], "tools": [WEATHER, CLOCK],
                              "tool_choice": forced, "temperature": 0, "max_tokens": 60}
    r = client.chat.completions.create(**kw)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content in (None, "")
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert set(args) == {"city"} and isinstance(args["city"], str)
    with client.chat.completions.stream(**kw) as stream:
        final = stream.get_final_completion()
    [streamed] = final.choices[0].message.tool_calls or []
    assert (streamed.function.name, streamed.function.arguments) == (  # type: ignore[union-attr]
        "get_weather", call.function.arguments)  # type: ignore[union-attr]
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.slow
def test_the_embedded_model_reads_a_tool_result_and_answers(smol: LiveServer) -> None:
    """The second step of a loop: the call and its result go back in the prompt (SmolLM2's
    template knows no tools: they are written out), and with ``tool_choice`` none the
    model answers in text, async client this time."""
    import asyncio

    async def step() -> Any:
        client = openai.AsyncOpenAI(base_url=f"{smol.url}/v1", api_key="unused",
                                    max_retries=0)
        call = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        return await client.chat.completions.create(
            model="smollm2-135m", tools=[WEATHER], tool_choice="none",  # type: ignore[list-item]
            messages=[USER, {"role": "assistant", "content": None, "tool_calls": [call]},  # type: ignore[list-item]
                      {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}],
            temperature=0, max_tokens=24)

    r = asyncio.run(step())
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 30  # the history was rendered
