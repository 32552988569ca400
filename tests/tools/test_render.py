"""Tools in a local model's prompt: given to a template that knows them, written out for
one that does not, and tool turns in the form each expects."""

from __future__ import annotations

import json

from rung.tools.grammar import call_schema, forced
from rung.tools.parse import calls_in
from rung.tools.render import call_block, template_inputs
from rung.types import ChatRequest, Message, ToolCall, ToolChoice, ToolSpec

W = ToolSpec("get_weather", "Weather in a city",
             {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
T = ToolSpec("get_time")
CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
HISTORY = (Message("system", "Be brief."), Message("user", "Weather in Paris?"),
           Message("assistant", "", tool_calls=(CALL,)),
           Message("tool", "18C, sunny", tool_call_id="call_1"))


def req(choice: ToolChoice | None = None, messages: tuple[Message, ...] = HISTORY,
        tools: tuple[ToolSpec, ...] = (W, T)) -> ChatRequest:
    return ChatRequest(messages=messages, tools=tools, tool_choice=choice)


def test_a_template_that_knows_tools_gets_them_in_openai_shape() -> None:
    messages, tools = template_inputs(req(), native=True)
    assert tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": W.parameters}}, {"type": "function", "function": {
            "name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
    assert messages[2]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Paris"}}}]  # a value: templates tojson it
    assert messages[3] == {"role": "tool", "content": "18C, sunny", "tool_call_id": "call_1"}


def test_a_template_without_tools_gets_them_written_in_the_system_turn() -> None:
    messages, tools = template_inputs(req(), native=False)
    assert tools is None
    system = messages[0]["content"]
    assert system.startswith("Be brief.\n\n# Tools") and '"name": "get_weather"' in system
    assert "otherwise answer in plain text" in system
    # the earlier call in the form the parser reads back, the result as a user turn
    assert calls_in(messages[2]["content"].removeprefix("<tool_call>")
                    .removesuffix("</tool_call>"))[0].name == "get_weather"  # type: ignore[index]
    assert messages[3] == {"role": "user",
                           "content": "<tool_response>\n18C, sunny\n</tool_response>"}


def test_without_a_system_turn_one_is_added_and_the_choice_is_said() -> None:
    messages, _ = template_inputs(req(ToolChoice("function", "get_time"),
                                      messages=(Message("user", "hi"),)), native=False)
    assert messages[0]["role"] == "system" and messages[1] == {"role": "user", "content": "hi"}
    assert "You must call the function get_time." in messages[0]["content"]
    messages, _ = template_inputs(req(ToolChoice("required")), native=False)
    assert "You must call one or more" in messages[0]["content"]


def test_choice_none_offers_no_tools_but_keeps_the_history() -> None:
    for native in (True, False):
        messages, tools = template_inputs(req(ToolChoice("none")), native=native)
        assert tools is None and "# Tools" not in messages[0]["content"]
        assert len(messages) == 4


def test_the_forced_tools_and_their_schema() -> None:
    assert forced(req()) == () and forced(req(ToolChoice("auto"))) == ()
    assert forced(req(ToolChoice("none"))) == ()
    assert forced(req(ToolChoice("function", "get_time"))) == (T,)
    assert forced(req(ToolChoice("required"))) == (W, T)
    one = call_schema((W,))
    assert one["properties"]["name"] == {"const": "get_weather"}
    assert one["properties"]["arguments"] == W.parameters
    assert [s["properties"]["name"]["const"] for s in call_schema((W, T))["anyOf"]] == [
        "get_weather", "get_time"]
    assert call_schema((T,))["properties"]["arguments"] == {"type": "object"}


def test_a_written_call_block_round_trips() -> None:
    block = call_block(ToolCall("x", "f", "not json"))
    assert json.loads(block.split("\n")[1]) == {"name": "f", "arguments": "not json"}


def test_after_tool_results_the_hint_turn_asks_for_an_answer_only_under_auto() -> None:
    hint = "Answer from the result."
    for native in (True, False):
        for choice in (None, ToolChoice("auto")):
            messages, _ = template_inputs(req(choice), native=native, after_result=hint)
            assert messages[-1] == {"role": "user", "content": hint}
            assert messages[-2]["content"].endswith(("18C, sunny", "</tool_response>"))
        # a forced call, tools withheld, no hint configured, or no result last: no hint
        for choice in (ToolChoice("required"), ToolChoice("function", "get_time"),
                       ToolChoice("none")):
            messages, _ = template_inputs(req(choice), native=native, after_result=hint)
            assert messages[-1]["content"] != hint
        assert template_inputs(req(), native=native)[0][-1]["content"] != hint
        messages, _ = template_inputs(req(messages=HISTORY[:2]), native=native,
                                      after_result=hint)
        assert messages[-1]["content"] == "Weather in Paris?"


def test_required_may_make_several_calls_a_named_function_one() -> None:
    from rung.tools.grammar import answer_schema, several

    assert several(req(ToolChoice("required")))
    assert not several(ChatRequest(messages=HISTORY, tools=(W, T),
                                   tool_choice=ToolChoice("required"),
                                   parallel_tool_calls=False))
    assert not several(req(ToolChoice("function", "get_time")))
    assert not several(req(ToolChoice("auto"))) and not several(req())
    many = answer_schema((W, T), several=True)
    assert many["type"] == "array" and many["minItems"] == 1
    assert many["items"] == call_schema((W, T))
    assert answer_schema((W,), several=False) == call_schema((W,))
