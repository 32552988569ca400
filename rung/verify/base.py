"""What a verifier sees and says: an :class:`Answer` in, a ``Verdict`` out.

A verifier may ask a tier for more text (self-consistency samples, a judge's yes/no)
through the :class:`Generate` callable the cascade gives it, so verifiers never hold
backends themselves.
"""

from __future__ import annotations

from typing import Protocol

from rung.types import Answer, ChatRequest, Verdict


class Generate(Protocol):
    async def __call__(self, tier: str, request: ChatRequest) -> Answer: ...


class Verifier(Protocol):
    name: str
    needs_logprobs: bool

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict: ...
