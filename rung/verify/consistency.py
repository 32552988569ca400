"""Self-consistency: draw k more samples and check that their final answers agree with the
answer being verified. Drawn from the answering tier by default; drawn from another tier it
is a cross-check (one model solves the problem itself and must reach the same answer)."""

from __future__ import annotations

import asyncio
import dataclasses

from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate
from rung.verify.final import answer_key


class ConsistencyVerifier:
    name = "self_consistency"
    needs_logprobs = False

    def __init__(self, *, samples: int, temperature: float, min_agreement: float,
                 tier: str | None = None) -> None:
        self.samples = samples
        self.temperature = temperature
        self.min_agreement = min_agreement
        self.tier = tier
        if tier is not None:
            self.name = "cross_check"

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        base_seed = request.seed if request.seed is not None else 0
        reqs = [dataclasses.replace(request, temperature=self.temperature,
                                    seed=base_seed + 1 + i, logprobs=False, stream=False)
                for i in range(self.samples)]
        sampler = self.tier or answer.tier
        others = await asyncio.gather(*(generate(sampler, r) for r in reqs))
        mine = answer_key(answer.text)
        agree = sum(1 for o in others if answer_key(o.text) == mine) / len(others)
        by = f" by {sampler}" if self.tier else ""
        return Verdict(self.name, 1.0 - agree, agree >= self.min_agreement,
                       f"agreement {agree:.2f}{by} on {mine[:20]!r}")
