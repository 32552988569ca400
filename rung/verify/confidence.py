"""Confidence from the answer's own token logprobs."""

from __future__ import annotations

import math
from typing import Literal

from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate


class LogprobVerifier:
    """Escalate when the mean (or minimum) token logprob is below ``min_logprob``.

    The score is ``1 - exp(statistic)``: one minus the geometric-mean (or least) token
    probability, so 0 means certain and values near 1 mean the model was guessing.
    """

    name = "logprob"
    needs_logprobs = True

    def __init__(self, *, statistic: Literal["mean", "min"], min_logprob: float) -> None:
        self.statistic = statistic
        self.min_logprob = min_logprob

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        values = [t.logprob for t in answer.logprobs]
        if not values:
            return Verdict(self.name, 0.5, True, "no logprobs: abstain")
        stat = sum(values) / len(values) if self.statistic == "mean" else min(values)
        return Verdict(self.name, 1.0 - math.exp(stat), stat >= self.min_logprob,
                       f"{self.statistic} logprob {stat:.3f}")
