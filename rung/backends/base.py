"""The one narrow interface every backend implements.

A backend turns a :class:`~rung.types.ChatRequest` into an async stream of :class:`~rung.types.Chunk` objects:
text, token logprobs when the backend has them, and, on the last chunk, the finish
reason and token usage. The local llama.cpp model, any OpenAI-compatible endpoint and
test doubles all implement just this, so the cascade, the server and the CLI never
care which one answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from rung.types import ChatRequest, Chunk


class Backend(Protocol):
    """What a tier needs from whatever generates its answers."""

    name: str

    @property
    def ready(self) -> bool:
        """True once the backend can answer (a local model is loaded)."""
        ...

    async def start(self) -> None:
        """Load models / open connection pools. Called once before the first request."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Generate an answer. Raises a :class:`rung.errors.RungError` subclass, before
        the first chunk where it can (a bad request, a full queue, an unreachable
        upstream). Closing the iterator early stops the generation."""
        ...

    async def aclose(self) -> None:
        """Release threads, models and connections."""
        ...
