"""What the local-model tests share: one event loop per module, real embedded-model
backends started on it, and a stream collected into one record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.types import ChatRequest, Chunk


@dataclass
class Got:
    text: str = ""
    logprobs: list[float] = field(default_factory=list)
    last: Chunk | None = None
    cached: int = 0  # the backend's cached_tokens grew by this much


async def collect(backend: LlamaBackend, req: ChatRequest) -> Got:
    got, before = Got(), backend.cached_tokens
    async for c in backend.stream(req):
        got.text += c.text
        got.logprobs += [t.logprob for t in c.logprobs]
        if c.finish_reason is not None:
            got.last = c
    got.cached = backend.cached_tokens - before
    return got


async def leave_after_first_chunk(backend: LlamaBackend, req: ChatRequest) -> None:
    """A client that reads the first piece of the answer and goes away."""
    stream = backend.stream(req)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def started(loop: asyncio.AbstractEventLoop, parallel: int,
            cache: bool = True) -> Iterator[LlamaBackend]:
    """The embedded model, started on ``loop`` for the module, closed after it."""
    b = LlamaBackend(f"p{parallel}{cache}",
                     LlamaBackendConfig(parallel=parallel, prefix_cache=cache),
                     catalog=CatalogConfig())
    loop.run_until_complete(b.start())
    yield b
    loop.run_until_complete(b.aclose())
