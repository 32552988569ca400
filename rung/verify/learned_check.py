"""The learned verifier (``rung verify train``) as a cascade check."""

from __future__ import annotations

from pathlib import Path

from rung.backends.base import ChatRequest
from rung.errors import ConfigError
from rung.routing.policy import Verdict
from rung.routing.scorers import prompt_text
from rung.verify.base import Answer, Generate


class LearnedVerifier:
    name = "learned"
    needs_logprobs = False

    def __init__(self, *, path: Path, max_score: float) -> None:
        from rung.verify.learned import VerifierModel

        try:
            self._model = VerifierModel.load(path)
        except FileNotFoundError as exc:
            raise ConfigError(f"verifier model file not found: {path}") from exc
        self.max_score = max_score

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        s = float(self._model.score(prompt_text(request), answer.text))
        return Verdict(self.name, s, s <= self.max_score, f"P(wrong) {s:.3f}")
