"""Parallel calls under ``auto`` on a real local model: Qwen2.5-Coder-0.5B (the built-in
ladder's second tier, which the README's set-up installs) writes one call and ends its
answer; with ``more_calls`` it is asked for more and adds the ones the task wants."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence

import pytest

from rung import defaults
from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.types import (
    ChatRequest,
    Chunk,
    Message,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    assemble_tool_calls,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not defaults.installed(defaults.STRONGER, CatalogConfig()),
                       reason=f"{defaults.STRONGER} is not installed (python3 tasks.py setup)"),
]

WEATHER = ToolSpec("get_weather", "Get the current weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = ToolSpec("get_time", "Get the local time in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def _backend(loop: asyncio.AbstractEventLoop, on: bool,
             parallel: int = 1) -> Iterator[LlamaBackend]:
    b = LlamaBackend(f"more-{on}", LlamaBackendConfig(model=defaults.STRONGER, n_ctx=2048,
                                                      more_calls=on, parallel=parallel),
                     catalog=CatalogConfig())
    loop.run_until_complete(b.start())
    yield b
    loop.run_until_complete(b.aclose())


@pytest.fixture(scope="module")
def on(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from _backend(loop, True)


@pytest.fixture(scope="module")
def off(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from _backend(loop, False)


def _ask(loop: asyncio.AbstractEventLoop, backend: LlamaBackend, text: str,
         **kw: object) -> tuple[str, Sequence[ToolCall], Chunk]:
    req = ChatRequest(messages=(Message("user", text),), tools=(WEATHER, TIME),
                      temperature=0.0, max_tokens=160, **kw)  # type: ignore[arg-type]

    async def go() -> tuple[str, Sequence[ToolCall], Chunk]:
        out, deltas, last = "", list[ToolCallDelta](), None
        async for c in backend.stream(req):
            out += c.text
            deltas += c.tool_calls
            if c.finish_reason is not None:
                last = c
        assert last is not None
        return out, assemble_tool_calls(deltas), last

    return loop.run_until_complete(go())


def _cities(calls: Sequence[ToolCall]) -> list[tuple[str, str]]:
    return [(c.name, json.loads(c.arguments)["city"]) for c in calls]


def test_a_free_answer_with_one_call_is_asked_for_the_others(
        loop: asyncio.AbstractEventLoop, on: LlamaBackend, off: LlamaBackend) -> None:
    ask = "What is the weather in Paris and in London?"
    _, alone, last_off = _ask(loop, off, ask)
    text, calls, last_on = _ask(loop, on, ask)
    assert _cities(alone) == [("get_weather", "Paris")]  # the model left to itself
    assert text == "" and last_on.finish_reason == "tool_calls"
    assert _cities(calls) == [("get_weather", "Paris"), ("get_weather", "London")]
    assert len({c.id for c in calls}) == 2
    # the added call's tokens are counted
    assert last_on.usage is not None and last_off.usage is not None
    assert last_on.usage.completion_tokens > last_off.usage.completion_tokens


def test_parallel_tool_calls_false_keeps_one_call(
        loop: asyncio.AbstractEventLoop, on: LlamaBackend) -> None:
    _, calls, last = _ask(loop, on, "What is the weather in Paris and in London?",
                          parallel_tool_calls=False)
    assert _cities(calls) == [("get_weather", "Paris")]
    assert last.finish_reason == "tool_calls"


def test_a_task_that_wants_one_call_gets_one(
        loop: asyncio.AbstractEventLoop, on: LlamaBackend) -> None:
    _, calls, _ = _ask(loop, on, "What time is it in Tokyo?")
    assert _cities(calls) == [("get_time", "Tokyo")]


def test_a_text_answer_is_not_continued(loop: asyncio.AbstractEventLoop,
                                        on: LlamaBackend) -> None:
    text, calls, last = _ask(loop, on, "Write a haiku about the sea.")
    assert not calls and text.strip() and last.finish_reason == "stop"


def test_a_batching_tier_sends_such_requests_down_its_single_sequence_path(
        loop: asyncio.AbstractEventLoop) -> None:
    """The built-in ladder's Qwen tier batches (``parallel = 4``); a request that may be
    asked for more calls takes its turn on the single-sequence path, and gets them."""
    for batched in _backend(loop, True, parallel=2):
        _, calls, _ = _ask(loop, batched, "What is the weather in Paris and in London?")
        assert _cities(calls) == [("get_weather", "Paris"), ("get_weather", "London")]
