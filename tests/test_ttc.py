"""reasoning_effort: strategies, the adaptive stopping rule, the wire, and the strategies
on the embedded model and through upstream tiers (real servers on loopback)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from rung import ttc
from rung.devtools.upstream import UpstreamBehaviour
from rung.errors import ConfigError
from rung.types import ChatRequest, Chunk, Message, Usage
from tests.conftest import LiveServer, config_of, http, rung_server, upstream_server, upstream_tier


@pytest.mark.parametrize(("text", "want"), [
    ("direct", ttc.Strategy("direct")),
    ("step_by_step", ttc.Strategy("step_by_step")),
    ("sc:8", ttc.Strategy("self_consistency", 8)),
    ("sc:4:fixed", ttc.Strategy("self_consistency", 4, adaptive=False)),
    ("upstream", ttc.Strategy("upstream")),
])
def test_strategies_parse(text: str, want: ttc.Strategy) -> None:
    assert ttc.parse_strategy(text) == want
    assert str(want) == text


@pytest.mark.parametrize("text", ["sc:1", "sc:65", "sc8", "best_of:4", "", "cot"])
def test_bad_strategies_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected direct"):
        ttc.parse_strategy(text)


@pytest.mark.parametrize(("suffix", "want"), [
    ("cot", ttc.Strategy("step_by_step")), ("sc8", ttc.Strategy("self_consistency", 8)),
    ("sc4fixed", ttc.Strategy("self_consistency", 4, adaptive=False)),
    ("direct", ttc.DIRECT)])
def test_bench_suffixes(suffix: str, want: ttc.Strategy) -> None:
    assert ttc.strategy_from_suffix(suffix) == want


def test_defaults_by_tier_kind() -> None:
    assert ttc.strategy_for(None, local=True, mapping=None) == ttc.DIRECT
    assert ttc.strategy_for("high", local=True, mapping=None) == ttc.Strategy(
        "self_consistency", 8)
    assert ttc.strategy_for("medium", local=True, mapping=None).kind == "step_by_step"
    assert ttc.strategy_for("high", local=False, mapping=None) == ttc.UPSTREAM
    assert ttc.strategy_for("high", local=False, mapping={"high": "sc:3"}).samples == 3


@pytest.mark.parametrize(("votes", "stops"), [
    ({"a": 4}, True),            # four alike: P = 1 - 1/32 = 0.969
    ({"a": 3}, False),           # three: 0.9375
    ({"a": 6, "b": 1}, True),
    ({"a": 5, "b": 2}, False),
    ({"a": 2, "b": 2}, False),
])
def test_the_stopping_rule(votes: dict[str, int], stops: bool) -> None:
    assert (ttc.majority_confidence(Counter(votes)) >= ttc.STOP_CONFIDENCE) is stops


def _scripted(answers: list[str]) -> tuple[ttc.Stream, list[ChatRequest]]:
    """A stream function answering the scripted texts in turn (the narrowest seam: the
    strategy's control flow, not a model's quality)."""
    seen: list[ChatRequest] = []

    async def stream(req: ChatRequest) -> AsyncIterator[Chunk]:
        text = answers[len(seen)]
        seen.append(req)
        yield Chunk(text=text)
        yield Chunk(finish_reason="stop", usage=Usage(10, 5), compute_s=0.5)
    return stream, seen


async def _run(strategy: ttc.Strategy, answers: list[str]) -> tuple[list[Chunk],
                                                                      list[ChatRequest],
                                                                      dict[str, Any]]:
    stream, seen = _scripted(answers)
    record: dict[str, Any] = {}
    req = ChatRequest(messages=(Message("user", "What is 2+2?"),), seed=7)
    chunks = [c async for c in ttc.run(strategy, stream, req, record.update)]
    return chunks, seen, record


async def test_adaptive_self_consistency_stops_once_the_samples_agree() -> None:
    answers = ["Answer: 4", "Answer: 5", "Answer: 4", "Answer: 4", "Answer: 4", "Answer: 4",
               "Answer: 4", "Answer: 4"]
    chunks, seen, record = await _run(ttc.Strategy("self_consistency", 8), answers)
    # 5 to 1 is P = 0.9375, 6 to 1 is 0.965: the 7th sample is the last
    assert record["samples"] == 7 and record["answer"] == "4"
    assert chunks[0].text == "Answer: 4"
    assert chunks[-1].usage == Usage(70, 35) and chunks[-1].compute_s == pytest.approx(3.5)
    assert [r.seed for r in seen] == [7, 8, 9, 10, 11, 12, 13]
    assert all(r.messages[0].role == "system" and "step by step" in r.messages[0].content
               for r in seen)
    assert {r.temperature for r in seen} == {ttc.SAMPLE_TEMPERATURE}


async def test_a_greedy_request_is_still_sampled() -> None:
    stream, seen = _scripted(["Answer: 4"] * 4)
    record: dict[str, Any] = {}
    req = ChatRequest(messages=(Message("user", "What is 2+2?"),), temperature=0.0)
    _ = [c async for c in ttc.run(ttc.Strategy("self_consistency", 4), stream, req,
                                  record.update)]
    assert {r.temperature for r in seen} == {ttc.SAMPLE_TEMPERATURE}
    assert record["temperature"] == ttc.SAMPLE_TEMPERATURE


async def test_fixed_self_consistency_draws_all_and_the_majority_wins() -> None:
    answers = ["so 5", "Answer: 4", "four: 4", "Answer: 5", "Answer: 4"]
    chunks, seen, record = await _run(ttc.Strategy("self_consistency", 5, adaptive=False),
                                      answers)
    assert len(seen) == 5 and record["agreement"] == 0.6
    assert chunks[0].text == "Answer: 4"  # the first sample that carries the winner


# -- the wire and upstream tiers --------------------------------------------------------

def test_unknown_levels_are_a_400_on_both_apis(upstream: LiveServer) -> None:
    with rung_server(config_of(tiers=[upstream_tier("up", upstream.url)])) as server:
        for path, body in (("/v1/chat/completions", {
                "model": "up", "messages": [{"role": "user", "content": "hi"}],
                "reasoning_effort": "extreme"}),
                ("/v1/responses", {"model": "up", "input": "hi",
                                   "reasoning": {"effort": "xhigh"}})):
            r = http("POST", server.url + path, body)
            assert r.status == 400, r.body
            assert r.json()["error"]["param"] in ("reasoning_effort", "reasoning.effort")


def test_an_upstream_tier_gets_the_field_or_runs_its_mapped_strategy() -> None:
    b = UpstreamBehaviour(reply="Answer: 42", bodies=[])
    with upstream_server(b) as up:
        cfg = config_of(tiers=[upstream_tier("relay", up.url),
                               {**upstream_tier("voted", up.url),
                                "effort": {"high": "sc:3:fixed"}}])
        with rung_server(cfg) as server:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
            ask: list[Any] = [{"role": "user", "content": "6 times 7?"}]
            r = client.chat.completions.create(model="relay", messages=ask,
                                               reasoning_effort="high")
            assert (b.bodies or [])[-1]["reasoning_effort"] == "high"
            assert r.model_extra["rung"]["attempts"][0]["strategy"] == {  # type: ignore[index]
                "name": "upstream", "effort": "high"}
            b.bodies = []
            r = client.chat.completions.create(model="voted", messages=ask,
                                               reasoning_effort="high")
            assert len(b.bodies) == 3 and all("reasoning_effort" not in x for x in b.bodies)
            strategy = r.model_extra["rung"]["attempts"][0]["strategy"]  # type: ignore[index]
            assert strategy["samples"] == 3 and strategy["agreement"] == 1.0
            assert r.usage is not None and r.usage.completion_tokens == 3 * 2


def test_a_tier_default_effort_applies_when_the_request_sets_none() -> None:
    b = UpstreamBehaviour(reply="Answer: 42", bodies=[])
    with upstream_server(b) as up:
        cfg = config_of(tiers=[{**upstream_tier("voted", up.url), "effort_default": "high",
                                "effort": {"high": "sc:3:fixed"}},
                               {**upstream_tier("relay", up.url), "effort_default": "low"}])
        with rung_server(cfg) as server:
            for model in ("voted", "relay"):
                r = http("POST", f"{server.url}/v1/chat/completions", {
                    "model": model, "messages": [{"role": "user", "content": "6 times 7?"}]})
                assert r.status == 200, r.body
    assert len(b.bodies or []) == 4
    assert (b.bodies or [])[-1]["reasoning_effort"] == "low"


def test_config_refuses_bad_strategies() -> None:
    with pytest.raises(ConfigError, match="effort.high"):
        config_of(tiers=[{"name": "t", "effort": {"high": "best_of:3"}}])
    with pytest.raises(ConfigError, match="no upstream"):
        config_of(tiers=[{"name": "t", "effort": {"low": "upstream"}}])


# -- the embedded model -----------------------------------------------------------------

@pytest.mark.slow
def test_the_strategies_on_the_embedded_model(smol: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{smol.url}/v1", api_key="x", max_retries=0)
    ask: list[Any] = [{"role": "user", "content": "What is 12 + 7?"}]
    got: dict[str, tuple[dict[str, Any], int]] = {}
    for effort in ("minimal", "medium", "high"):
        r = client.chat.completions.create(model="smollm2-135m", messages=ask, max_tokens=64,
                                           reasoning_effort=effort)  # type: ignore[arg-type]
        assert r.choices[0].message.content
        got[effort] = (r.model_extra["rung"]["attempts"][-1]["strategy"],  # type: ignore[index]
                       r.usage.completion_tokens)  # type: ignore[union-attr]
    assert got["minimal"][0] == {"name": "direct", "effort": "minimal"}
    assert got["medium"][0]["name"] == "step_by_step"
    high = got["high"][0]
    assert high["name"] == "self_consistency" and 4 <= high["samples"] <= 8
    assert got["high"][1] > got["minimal"][1]  # every sample's tokens are counted
    # tool calls do not vote: answered directly, and the route says why
    r = client.chat.completions.create(
        model="smollm2-135m", messages=ask, reasoning_effort="high", max_tokens=48,
        tools=[{"type": "function", "function": {"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "number"}}}}}],
        tool_choice={"type": "function", "function": {"name": "add"}})
    strategy = r.model_extra["rung"]["attempts"][-1]["strategy"]  # type: ignore[index]
    assert strategy["name"] == "direct" and "not for tool calls" in strategy["skipped"]
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) is not None  # type: ignore[index]
