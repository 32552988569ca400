"""A local tier's tool-calling stream on the real embedded model: a consumer that stops
early (a client gone) releases the request at once, not when the stream is collected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator

import pytest

from rung.backends.llama import LlamaBackend
from rung.types import ChatRequest, Chunk, Message, ToolChoice, ToolSpec
from tests.backends.conftest import started

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def single(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 1)


def test_a_tool_stream_closed_early_releases_its_request_at_once(
        loop: asyncio.AbstractEventLoop, single: LlamaBackend) -> None:
    req = ChatRequest(messages=(Message("user", "Tell me a long story about the sea."),),
                      tools=(ToolSpec("get_weather"),), tool_choice=ToolChoice("auto"),
                      temperature=0.0, max_tokens=200)

    async def go() -> tuple[int, int]:
        stream = single.stream(req)
        assert isinstance(stream, AsyncGenerator)
        async for _ in stream:  # the first piece of the answer, then the client leaves
            break
        during = single.in_flight
        await stream.aclose()
        return during, single.in_flight

    assert loop.run_until_complete(go()) == (1, 0)
    # the model is free again: the next request is answered whole
    async def whole() -> list[Chunk]:
        return [c async for c in single.stream(req)]

    last = loop.run_until_complete(whole())[-1]
    assert last.finish_reason in ("stop", "length") and last.usage is not None
