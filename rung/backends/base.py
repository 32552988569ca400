"""The one narrow interface every backend implements.

A backend turns a :class:`ChatRequest` into an async stream of :class:`Chunk` objects:
text, token logprobs when the backend has them, and, on the last chunk, the finish
reason and token usage. The local llama.cpp model, any OpenAI-compatible endpoint and
test doubles all implement just this, so the cascade, the server and the CLI never
care which one answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``json_object`` asks for any valid JSON; ``json_schema`` for JSON matching ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request, independent of any wire format."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    response_format: ResponseFormat = field(default_factory=ResponseFormat)
    # The caller wants pieces as they come; an HTTP backend may use it to pick its
    # upstream mode. The answer's content does not depend on it.
    stream: bool = False


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of an answer. The last chunk of a stream carries ``finish_reason`` and
    ``usage``; any chunk may carry text and the logprobs of the tokens it came from."""

    text: str = ""
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    # On the last chunk of a local backend: how long the request waited for a free model
    # instance before generation started (a stage latency in traces).
    queue_ms: float | None = None
    # On the last chunk of a local backend: seconds of model compute spent on this
    # request (without queueing; a batched step's time is shared among its sequences).
    compute_s: float | None = None


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
