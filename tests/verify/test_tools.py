"""Tool-call verifiers: the schema check on every way a call can be wrong, the argument
logprob on real tokens, and both in a cascade of real servers: a bad call from the first
tier is never returned, the next tier's is."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from rung.devtools.upstream import UpstreamBehaviour
from rung.types import (
    Answer,
    ChatRequest,
    Chunk,
    Message,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)
from rung.verify.tools import ToolLogprobVerifier, ToolSchemaVerifier, value_tokens
from tests.conftest import config_of, rung_server, upstream_server, upstream_tier

W = ToolSpec("get_weather", None, {
    "type": "object", "properties": {"city": {"type": "string"},
                                     "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"]})
T = ToolSpec("get_time")
USER = (Message("user", "Weather in Paris?"),)


def answer(*calls: ToolCall, tokens: tuple[TokenLogprob, ...] = ()) -> Answer:
    deltas = tuple(ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(calls))
    return Answer("t", [Chunk(tool_calls=deltas, logprobs=tokens)])


async def never(tier: str, request: ChatRequest) -> Answer:  # verifiers here generate nothing
    raise AssertionError("no generation expected")


def call(name: str = "get_weather", args: str = '{"city": "Paris"}') -> ToolCall:
    return ToolCall("c", name, args)


# (case, choice, calls, accept, detail fragment)
SCHEMA = [
    ("valid", None, [call()], True, "1 valid"),
    ("valid, optional given", None, [call(args='{"city": "Paris", "unit": "c"}')], True, ""),
    ("two valid", None, [call(), call("get_time", "{}")], True, "2 valid"),
    ("no such tool", None, [call("get_wether")], False, "no such tool"),
    ("arguments not JSON", None, [call(args='{"city": ')], False, "not a JSON object"),
    ("arguments a list", None, [call(args="[1]")], False, "not a JSON object"),
    ("required missing", None, [call(args="{}")], False, "'city' is a required property"),
    ("wrong type", None, [call(args='{"city": 3}')], False, 'city: fails type "string"'),
    ("not in enum", None, [call(args='{"city": "P", "unit": "kelvin"}')], False,
     'unit: fails enum ["c", "f"]'),
    ("second call bad", None, [call(), call("nope")], False, "nope: no such tool"),
    ("forced, other tool", ToolChoice("function", "get_time"), [call()], False,
     "not the forced get_time"),
    ("required, no call", ToolChoice("required"), [], False, "no call"),
    ("auto, no call", ToolChoice("auto"), [], True, "no call"),
]


@pytest.mark.parametrize(("case", "choice", "calls", "accept", "detail"), SCHEMA,
                         ids=[c[0] for c in SCHEMA])
async def test_tool_schema(case: str, choice: ToolChoice | None, calls: list[ToolCall],
                           accept: bool, detail: str) -> None:
    req = ChatRequest(messages=USER, tools=(W, T), tool_choice=choice)
    v = await ToolSchemaVerifier().verify(req, answer(*calls), never)
    assert v.accept is accept and detail in v.detail, v
    assert "kelvin" not in v.detail  # verdicts are stored under redact: no argument values


CUT = [  # (text, finish_reason, accept): what an answer without a parsed call says
    ('```json\n{\n  "name": "get_weather",\n  "arguments": {"city": "Paris, Paris, Paris',
     "length", False),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Par', "length", False),
    ('{"name": "get_weather", "arguments": {"city": "Par', "length", False),
    ("To find the weather, open a browser and look it up, then " * 5, "length", True),
    ('```json\n{\n  "name": "get_weather", "arguments": {"city": "Paris"', "stop", False),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": Paris}}</tool_call>', "stop",
     False),
    ("It is 24 degrees in Paris.", "stop", True),
]


@pytest.mark.parametrize(("text", "finish", "accept"), CUT)
async def test_a_call_cut_off_or_not_parsing_is_rejected(text: str, finish: str,
                                                         accept: bool) -> None:
    req = ChatRequest(messages=USER, tools=(W, T))
    cut = Answer("t", [Chunk(text=text), Chunk(finish_reason=finish)])  # type: ignore[arg-type]
    v = await ToolSchemaVerifier().verify(req, cut, never)
    assert v.accept is accept, v
    assert accept or v.detail == ("a call cut off at the length limit" if finish == "length"
                                  else "a call that does not parse")


async def test_a_call_repeating_one_already_answered_is_rejected() -> None:
    """After the result of get_weather(Paris) the same call again is a loop, not a step;
    the same function on other arguments, or a call not yet answered, is a step."""
    made = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    history = USER + (Message("assistant", "", tool_calls=(made,)),
                      Message("tool", "18C", tool_call_id="call_1"))
    req = ChatRequest(messages=history, tools=(W, T))
    again = await ToolSchemaVerifier().verify(req, answer(call(args='{ "city":"Paris"}')),
                                              never)
    assert not again.accept and "repeats a call" in again.detail, again
    for other in (call(args='{"city": "Rome"}'), call("get_time", "{}")):
        assert (await ToolSchemaVerifier().verify(req, answer(other), never)).accept
    unanswered = ChatRequest(messages=history[:-1], tools=(W, T))
    assert (await ToolSchemaVerifier().verify(unanswered, answer(call()), never)).accept


async def test_without_tools_both_abstain() -> None:
    req = ChatRequest(messages=USER)
    assert (await ToolSchemaVerifier().verify(req, answer(call("x")), never)).accept
    assert (await ToolLogprobVerifier(min_logprob=0).verify(req, answer(call("x")), never)).accept


def toks(*pieces: tuple[str, float]) -> tuple[TokenLogprob, ...]:
    return tuple(TokenLogprob(p, lp) for p, lp in pieces)


def test_value_tokens_are_the_argument_values_only() -> None:
    tokens = toks(('{"', -0.1), ("name", -0.1), ('":', -0.1), (' "', -0.1), ("get", -2.0),
                  ("_weather", -2.0), ('",', -0.1), (' "', -0.1), ("arguments", -0.1),
                  ('":', -0.1), (' {"', -0.1), ("city", -3.0), ('":', -0.1), (' "', -0.1),
                  ("Par", -1.0), ("is", -0.5), ('",', -0.1), (' "', -0.1), ("days", -3.0),
                  ('":', -0.1), (" ", -0.1), ("3", -0.25), ("}}", -0.1))
    assert [t.token for t in value_tokens(list(tokens))] == ["Par", "is", "3"]
    assert value_tokens(list(toks(("It", -1.0), (" is", -1.0)))) == []


async def test_tool_logprob_scores_the_values() -> None:
    tokens = toks(('{"name": "f", "arguments": {"a": "', -0.01), ("x", -2.0), ('"}}', -0.01))
    req = ChatRequest(messages=USER, tools=(W,))
    low = await ToolLogprobVerifier(min_logprob=-1.0).verify(req, answer(call(), tokens=tokens),
                                                              never)
    assert not low.accept and "mean argument logprob -2.000 over 1 tokens" in low.detail
    assert (await ToolLogprobVerifier(min_logprob=-2.5).verify(
        req, answer(call(), tokens=tokens), never)).accept


WEATHER: Any = {"type": "function", "function": {
    "name": "get_weather", "parameters": W.parameters}}


def test_a_bad_call_from_the_first_tier_is_never_returned() -> None:
    """Two real upstreams behind the alias: the small one calls a tool that was not
    offered, tool_schema rejects it, the big one's valid call is what the client gets;
    the route records the verdict."""
    bad = UpstreamBehaviour(tool_calls=[ToolCall("call_1", "get_wether", '{"city": "Paris"}')])
    good = UpstreamBehaviour(tool_calls=[ToolCall("call_2", "get_weather", '{"city": "Paris"}')])
    with upstream_server(bad) as small, upstream_server(good) as big:
        cfg = config_of(tiers=[{**upstream_tier("small", small.url),
                                "verifiers": [{"type": "tool_schema"}]},
                               upstream_tier("big", big.url)],
                        routing={"thresholds": []})
        with rung_server(cfg) as server:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
            r = client.chat.completions.with_raw_response.create(
                model="rung", messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[WEATHER])
            got = r.parse()
            [c] = got.choices[0].message.tool_calls or []
            assert (c.id, c.function.name) == ("call_2", "get_weather")  # type: ignore[union-attr]
            assert json.loads(c.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
            assert bad.calls == 1 and good.calls == 1
            assert r.headers["x-rung-tier"] == "big"
            route = r.headers["x-rung-route"]
            assert "small:rejected(tool_schema=1.00-)" in route and "big:answered" in route


DELETE: Any = {"type": "function", "function": {
    "name": "delete_file", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}, "force": {"type": "boolean"}}, "required": ["path"]}}}


@pytest.mark.parametrize(("big_path", "tier", "big_calls"), [
    ("/TMP/a.txt ", "small", 1),  # the same call (normalised): the small tier's is returned
    ("/etc/passwd", "big", 2),  # the strong tier differs: the cascade escalates to it
])
def test_a_high_stakes_call_is_confirmed_by_the_named_tier(big_path: str, tier: str,
                                                           big_calls: int) -> None:
    small_b = UpstreamBehaviour(tool_calls=[ToolCall(
        "call_s", "delete_file", '{"path": "/tmp/a.txt", "force": true}')])
    big_b = UpstreamBehaviour(tool_calls=[ToolCall(
        "call_b", "delete_file", json.dumps({"path": big_path}))])
    with upstream_server(small_b) as small, upstream_server(big_b) as big:
        cfg = config_of(tiers=[upstream_tier("small", small.url), upstream_tier("big", big.url)],
                        routing={"thresholds": []},
                        tools={"high_stakes": ["delete_*"], "confirm_tier": "big"})
        with rung_server(cfg) as server:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
            msgs: Any = [{"role": "user", "content": "Delete /tmp/a.txt"}]
            r = client.chat.completions.with_raw_response.create(
                model="rung", messages=msgs, tools=[DELETE, WEATHER])
            [c] = r.parse().choices[0].message.tool_calls or []
            assert r.headers["x-rung-tier"] == tier
            assert c.id == ("call_s" if tier == "small" else "call_b")
            assert big_b.calls == big_calls  # the confirmation, then (if it differs) the answer
            # a call to a tool that is not high-stakes is returned unconfirmed
            small_b.tool_calls = [ToolCall("call_w", "get_weather", '{"city": "Oslo"}')]
            r = client.chat.completions.with_raw_response.create(
                model="rung", messages=msgs, tools=[DELETE, WEATHER])
            assert r.headers["x-rung-tier"] == "small" and big_b.calls == big_calls


def test_tools_outside_the_allow_list_or_on_the_deny_list_are_refused() -> None:
    with upstream_server(UpstreamBehaviour()) as up:
        cfg = config_of(tiers=[upstream_tier("up", up.url)],
                        tools={"allow": ["get_*", "delete_file"], "deny": ["delete_*"]})
        with rung_server(cfg) as server:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
            msgs: Any = [{"role": "user", "content": "hi"}]
            clock: Any = {"type": "function", "function": {"name": "set_time"}}
            for tools, index, name in (([WEATHER, DELETE], 1, "delete_file"),
                                       ([clock], 0, "set_time")):
                with pytest.raises(openai.BadRequestError) as info:
                    client.chat.completions.create(model="up", messages=msgs, tools=tools)
                err: Any = info.value.body
                assert err["param"] == f"tools[{index}]" and err["code"] == "tool_not_allowed"
                assert name in err["message"]
            assert client.chat.completions.create(model="up", messages=msgs, tools=[WEATHER])
            assert up_calls(up) == 1


def up_calls(server: Any) -> int:
    from tests.conftest import behaviour

    return behaviour(server).calls
