"""LangChain's ChatOpenAI against a real rung server: bound tools come back as parsed
tool calls (whole and streamed), a ToolMessage reaches the upstream as a ``tool`` turn
answering the right call, and structured output parses, by tool call and by JSON schema."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from rung.types import ToolCall
from tests.clients.conftest import TIMEOUT_S, gateway
from tests.conftest import LiveServer

CALL = ToolCall("call_w1", "get_weather", '{"city": "Paris", "unit": "celsius"}')
ASKED = "Weather in Paris?"
USER = {"role": "user", "content": ASKED}
RAN: list[tuple[str, str]] = []  # what get_weather was called with, by whoever called it


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
    """The weather in a city now."""
    RAN.append((city, unit))
    return f"sunny, 24 degrees {unit} in {city}"


WEATHER_SCHEMA = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "required": ["city", "unit"], "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}


class Weather(BaseModel):
    """A weather report."""

    city: str
    celsius: int


def chat_model(base_url: str, tier: str) -> ChatOpenAI:
    """LangChain's OpenAI chat model on one rung tier, bounded in time, never retrying."""
    return ChatOpenAI(base_url=base_url, api_key=SecretStr("unused"), model=tier,
                      timeout=TIMEOUT_S, max_retries=0)


@pytest.fixture(autouse=True)
def _fresh_record() -> None:
    RAN.clear()


def test_bound_tool_call_round_trip() -> None:
    with gateway([CALL], reply="It is sunny in Paris.") as gw:
        llm = chat_model(gw.base_url, gw.tier).bind_tools([get_weather])
        asked = llm.invoke([HumanMessage(ASKED)])
        assert isinstance(asked, AIMessage)
        assert asked.tool_calls == [{"name": "get_weather", "id": "call_w1", "type": "tool_call",
                                     "args": {"city": "Paris", "unit": "celsius"}}]
        assert asked.response_metadata["finish_reason"] == "tool_calls"
        (first,) = gw.upstream.bodies or []
        assert first["messages"] == [USER] and first["tools"] == [WEATHER_SCHEMA]

        result = get_weather.invoke(asked.tool_calls[0])  # a ToolCall in, a ToolMessage out
        assert isinstance(result, ToolMessage) and result.tool_call_id == "call_w1"
        assert RAN == [("Paris", "celsius")]
        answer = llm.invoke([HumanMessage(ASKED), asked, result])
        assert answer.content == "It is sunny in Paris." and answer.tool_calls == []
        _, second = gw.upstream.bodies or []
        assert second["messages"] == [
            USER,
            {"role": "assistant", "content": None, "tool_calls": [CALL.as_dict()]},
            {"role": "tool", "content": "sunny, 24 degrees celsius in Paris",
             "tool_call_id": "call_w1"},
        ]


def test_streamed_tool_call_assembles_into_the_same_call() -> None:
    calls = [CALL, ToolCall("call_w2", "get_weather", '{"city": "Oslo", "unit": "fahrenheit"}')]
    with gateway(calls, reply="unused") as gw:
        llm = chat_model(gw.base_url, gw.tier).bind_tools([get_weather])
        chunks = list(llm.stream([HumanMessage(ASKED)]))
        assert gw.upstream.last_body is not None and gw.upstream.last_body["stream"] is True
        fragments = [c for chunk in chunks for c in chunk.tool_call_chunks]  # type: ignore[attr-defined]
        assert len(fragments) > len(calls)  # the arguments really arrived in pieces
        whole = sum(chunks[1:], chunks[0])
        assert isinstance(whole, AIMessageChunk)
        assert whole.tool_calls == [
            {"name": "get_weather", "id": "call_w1", "type": "tool_call",
             "args": {"city": "Paris", "unit": "celsius"}},
            {"name": "get_weather", "id": "call_w2", "type": "tool_call",
             "args": {"city": "Oslo", "unit": "fahrenheit"}}]
        assert whole.response_metadata["finish_reason"] == "tool_calls"


def test_structured_output_by_function_calling() -> None:
    call = ToolCall("call_s1", "Weather", '{"city": "Paris", "celsius": 24}')
    with gateway([call], reply="unused") as gw:
        report = chat_model(gw.base_url, gw.tier).with_structured_output(
            Weather, method="function_calling").invoke(ASKED)
        assert report == Weather(city="Paris", celsius=24)
        body = gw.upstream.last_body
        assert body is not None
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
        (offered,) = body["tools"]
        assert offered["function"]["name"] == "Weather"
        assert offered["function"]["parameters"]["required"] == ["city", "celsius"]


def test_structured_output_by_json_schema() -> None:
    with gateway([], reply=json.dumps({"city": "Oslo", "celsius": 3})) as gw:
        report = chat_model(gw.base_url, gw.tier).with_structured_output(
            Weather, method="json_schema").invoke(ASKED)
        assert report == Weather(city="Oslo", celsius=3)
        body = gw.upstream.last_body
        assert body is not None and "tools" not in body
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Weather"  # the client's
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["required"] == ["city", "celsius"]
        assert schema["properties"]["celsius"]["type"] == "integer"


@pytest.mark.slow
@pytest.mark.parametrize("tier", ["smollm2-135m", "rung"])
def test_the_embedded_model_fills_a_structured_output_and_a_bound_tool(smol: LiveServer,
                                                                       tier: str) -> None:
    """No upstream: SmolLM2 itself, by name and through the alias. with_structured_output
    forces the tool, so a grammar holds the answer to the schema and it always parses;
    bind_tools with a forced choice gives a call LangChain parses and the tool runs."""
    model = chat_model(f"{smol.url}/v1", tier).bind(temperature=0, max_tokens=48)
    report = model.with_structured_output(Weather, method="function_calling").invoke(
        "Paris: 24 degrees, sunny.")
    assert isinstance(report, Weather) and report.city
    bound = chat_model(f"{smol.url}/v1", tier).bind_tools([get_weather],
                                                          tool_choice="get_weather")
    msg = bound.invoke(ASKED)
    assert isinstance(msg, AIMessage)
    (call,) = msg.tool_calls
    assert call["name"] == "get_weather" and call["args"]["unit"] in ("celsius", "fahrenheit")
    get_weather.invoke(call)
    assert RAN == [(call["args"]["city"], call["args"]["unit"])]
