"""What a verifier sees and says: an :class:`Answer` in, a ``Verdict`` out.

A verifier may ask a tier for more text (self-consistency samples, a judge's yes/no)
through the :class:`Generate` callable the cascade gives it, so verifiers never hold
backends themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rung.backends.base import ChatRequest, Chunk, TokenLogprob, Usage
from rung.routing.policy import Verdict


@dataclass
class Answer:
    """One tier's whole answer, buffered."""

    tier: str
    chunks: list[Chunk] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def logprobs(self) -> list[TokenLogprob]:
        return [lp for c in self.chunks for lp in c.logprobs]

    @property
    def usage(self) -> Usage | None:
        for c in reversed(self.chunks):
            if c.usage is not None:
                return c.usage
        return None

    @property
    def queue_ms(self) -> float | None:
        return next((c.queue_ms for c in reversed(self.chunks) if c.queue_ms is not None),
                    None)

    @property
    def compute_s(self) -> float | None:
        """Model compute the backend attributed to this answer (local tiers), if any."""
        return next((c.compute_s for c in reversed(self.chunks) if c.compute_s is not None),
                    None)

    @property
    def finish_reason(self) -> str | None:
        for c in reversed(self.chunks):
            if c.finish_reason is not None:
                return c.finish_reason
        return None


class Generate(Protocol):
    async def __call__(self, tier: str, request: ChatRequest) -> Answer: ...


class Verifier(Protocol):
    name: str
    needs_logprobs: bool

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict: ...
