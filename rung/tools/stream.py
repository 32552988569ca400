"""A local model's chunks, with the tool calls in its text turned into tool-call chunks.

Content streams through as the model writes it; each call goes out as soon as its block
closes, so a client sees the first call before the model has written the next, in
OpenAI's delta shape: one chunk with the call's index, id and name (arguments empty),
then one with its arguments. The last chunk's ``finish_reason`` is ``tool_calls`` when
any call was made. With ``parallel_tool_calls`` false, only the first call is kept.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import replace

from rung.tools.parse import CallReader
from rung.types import ChatRequest, Chunk, ToolCall, ToolCallDelta


async def with_tool_calls(request: ChatRequest, chunks: AsyncGenerator[Chunk, None]
                          ) -> AsyncIterator[Chunk]:
    reader = CallReader()
    most = 1 if request.parallel_tool_calls is False else None
    made = 0

    def pieces(calls: list[ToolCall]) -> Iterator[Chunk]:
        nonlocal made
        if most is not None:
            calls = calls[: max(0, most - made)]
        for c in calls:
            yield Chunk(tool_calls=(ToolCallDelta(index=made, id=c.id, name=c.name),))
            yield Chunk(tool_calls=(ToolCallDelta(index=made, arguments=c.arguments),))
            made += 1

    try:
        async for chunk in chunks:
            text, calls = reader.push(chunk.text)
            if chunk.finish_reason is None:
                if text or chunk.logprobs:
                    yield replace(chunk, text=text)
                for piece in pieces(calls):
                    yield piece
                continue
            rest, more = reader.finish()
            if text or rest or chunk.logprobs:
                yield replace(chunk, text=text + rest, finish_reason=None, usage=None,
                              queue_ms=None, compute_s=None, sampling=None)
            for piece in pieces(calls + more):
                yield piece
            # The last chunk as it came (usage, compute, sampling), without its text.
            yield replace(chunk, text="", logprobs=(),
                          finish_reason="tool_calls" if made else chunk.finish_reason)
    finally:
        # A consumer that stops early (a client gone) stops the generation now, not when
        # the abandoned stream is collected.
        await chunks.aclose()
