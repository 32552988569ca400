"""A trace: the unit of observability, one per accepted request, failures included."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from rung.types import Message, Route


@dataclass
class Trace:
    id: str
    time: float  # unix seconds, when the request was accepted
    model: str  # what the client asked for
    status: str = "ok"  # "ok", or the error code
    tier: str | None = None  # who answered
    key_id: str | None = None
    escalated: bool = False
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cost: float = 0.0
    score: float | None = None
    prompt_hash: str = ""
    messages: list[dict[str, str]] | None = None  # None when redacted
    response: str | None = None
    route: dict[str, Any] = field(default_factory=dict)  # Route.as_dict(); see routing
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def routing(self) -> Route:
        """The stored route, read back as the typed record (any stored shape reads)."""
        return Route.from_dict(self.route, requested=self.model)


def prompt_hash(messages: tuple[Message, ...]) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(m.role.encode())
        h.update(b"\x00")
        h.update(m.content.encode())
        h.update(b"\x01")
    return h.hexdigest()[:32]
