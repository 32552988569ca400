"""The repetition check: an answer that loops is not an answer.

Tiny models fall into loops ("la femme au martyre, la femme au martyre, ...", "aye, aye,
aye, ...") and, sampled at their recommended temperature, can run to the end of their
context. A tier's ``max_tokens`` cap stops such a loop early; this check then rejects it,
so the next tier answers. What counts as a loop: at least ``max_repeated`` of the answer's
word 3-grams repeat an earlier one (ordinary prose and lists repeat almost none; measured
in docs/default-ladder.md), or the answer was cut off by the tier's own cap (it ended at
its length limit though the request set no ``max_tokens``).
"""

from __future__ import annotations

import re

from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate

_WORD = re.compile(r"\w+")
MIN_WORDS = 12  # shorter answers have too few 3-grams to say


def repeated_share(text: str) -> float:
    """The share of the text's word 3-grams that repeat an earlier one."""
    words = _WORD.findall(text.lower())
    if len(words) < MIN_WORDS:
        return 0.0
    grams = list(zip(words, words[1:], words[2:], strict=False))
    return 1.0 - len(set(grams)) / len(grams)


class RepetitionVerifier:
    name = "repetition"
    needs_logprobs = False

    def __init__(self, max_repeated: float = 0.5) -> None:
        self.max_repeated = max_repeated

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        if answer.finish_reason == "length" and request.max_tokens is None:
            return Verdict(self.name, 1.0, False, "cut off at the tier's length cap")
        share = repeated_share(answer.text)
        if share >= self.max_repeated:
            return Verdict(self.name, share, False, f"{share:.0%} of its phrases repeat")
        return Verdict(self.name, share, True, f"{share:.0%} of its phrases repeat")
