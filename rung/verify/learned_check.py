"""The learned verifier (``rung verify train``) as a cascade check."""

from __future__ import annotations

from pathlib import Path

from rung.errors import ConfigError
from rung.routing.scorers import prompt_text
from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate


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
        prompt = prompt_text(request)
        s = float(self._model.score(prompt, answer.text))
        p_wrong = float(self._model.p_wrong(prompt, answer.text))
        return Verdict(self.name, s, s <= self.max_score,
                       f"escalation score {s:.3f}, P(wrong) {p_wrong:.3f}")
