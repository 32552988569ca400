"""A judge: a tier is asked whether the answer is right; P(yes) from its logprobs."""

from __future__ import annotations

import math

from rung.routing.scorers import prompt_text
from rung.types import Answer, ChatRequest, Message, Verdict
from rung.verify.base import Generate

_PROMPT = ("Question:\n{question}\n\nProposed answer:\n{answer}\n\n"
           "Is the proposed answer correct? Reply with only yes or no.")


def yes_probability(top: list[tuple[str, float]]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from a first token's top logprobs; None if neither."""
    yes = no = 0.0
    for token, logprob in top:
        word = token.strip().lower()
        if word in {"yes", "y", "correct", "true"}:
            yes += math.exp(logprob)
        elif word in {"no", "n", "incorrect", "false", "wrong"}:
            no += math.exp(logprob)
    if yes + no == 0:
        return None
    return yes / (yes + no)


class JudgeVerifier:
    name = "judge"
    needs_logprobs = False

    def __init__(self, *, tier: str | None, min_yes: float, rubric: str | None = None) -> None:
        self.tier = tier
        self.min_yes = min_yes
        self.rubric = rubric

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        ask = ChatRequest(
            messages=(Message("system", "You are a strict grader." + (
                          f" Grade by this rubric:\n{self.rubric}" if self.rubric else "")),
                      Message("user", _PROMPT.format(question=prompt_text(request),
                                                     answer=answer.text))),
            max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)
        judged = await generate(self.tier or answer.tier, ask)
        lps = judged.logprobs
        if lps:
            top = [(t.token, t.logprob) for t in lps[0].top] or [(lps[0].token, lps[0].logprob)]
            p = yes_probability(top)
        else:  # the judge's backend gives no logprobs: read its word
            word = judged.text.strip().lower()
            p = 1.0 if word.startswith("yes") else 0.0 if word.startswith("no") else None
        if p is None:
            return Verdict(self.name, 0.5, True, "judge said neither yes nor no: abstain")
        return Verdict(self.name, 1.0 - p, p >= self.min_yes, f"P(yes) {p:.3f}")
