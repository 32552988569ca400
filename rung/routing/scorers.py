"""Scorers: a request -> a float in [0, 1], "how much does this need a stronger tier".

- ``heuristic``: a cheap baseline from the prompt's length and shape;
- ``random``: the baseline every router is compared against (seeded);
- ``learned``: a model trained by ``rung router train`` (see ``rung.routing.learned``).
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Protocol

from rung.config import ScorerConfig
from rung.errors import ConfigError
from rung.types import ChatRequest

# Scoring reads at most this much of a prompt: 3x the longest training prompt (MMLU,
# 4,868 characters), so no prompt like those it learned from is cut, while a prompt of
# megabytes costs milliseconds, not seconds (regexes and tokenizers hold the GIL, so even
# a scorer run in a thread would stall the server's event loop on a 7.5 MB prompt).
MAX_PROMPT_CHARS = 16_384


class Scorer(Protocol):
    name: str
    # True when scoring may take long enough to stall the event loop (a model to load,
    # an embedding to compute): the gateway then scores in a worker thread.
    blocking: bool

    def score(self, request: ChatRequest) -> float: ...


def prompt_text(request: ChatRequest) -> str:
    """What routers look at: the last user message (the question being asked)."""
    for m in reversed(request.messages):
        if m.role == "user":
            return m.content
    return request.messages[-1].content if request.messages else ""


_HARD = re.compile(r"\b(prove|derive|calculate|compute|how many|how much|explain why|"
                   r"step by step|algorithm|implement|function|integral|probability|"
                   r"equation|optimi[sz]e|debug|refactor)\b", re.IGNORECASE)


class HeuristicScorer:
    """Longer prompts, numbers, code and reasoning words score higher."""

    name = "heuristic"
    blocking = False

    def score(self, request: ChatRequest) -> float:
        text = prompt_text(request)[:MAX_PROMPT_CHARS]
        words = len(text.split())
        x = -2.0 + 0.6 * math.log1p(words / 10)
        x += 0.25 * min(len(re.findall(r"\d+(?:\.\d+)?", text)), 8)
        x += 0.5 * min(len(_HARD.findall(text)), 4)
        x += 1.0 if ("```" in text or re.search(r"\bdef |\{\s*$|;\s*$", text, re.MULTILINE)) else 0.0
        x += 0.3 * max(0, len(request.messages) - 2) / 2
        return 1.0 / (1.0 + math.exp(-x))


class RandomScorer:
    name = "random"
    blocking = False

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def score(self, request: ChatRequest) -> float:
        return self._rng.random()


class LearnedScorer:
    name = "learned"
    blocking = True

    def __init__(self, path: Path) -> None:
        from rung.routing.learned import RouterModel

        try:
            self._model = RouterModel.load(path)
        except FileNotFoundError as exc:
            raise ConfigError(f"router model file not found: {path}") from exc

    def score(self, request: ChatRequest) -> float:
        return float(self._model.score(prompt_text(request)))


def build_scorer(cfg: ScorerConfig) -> Scorer:
    if cfg.type == "random":
        return RandomScorer(cfg.seed)
    if cfg.type == "learned":
        assert cfg.path is not None  # the config validator guarantees it
        return LearnedScorer(cfg.path)
    return HeuristicScorer()
