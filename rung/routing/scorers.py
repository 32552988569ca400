"""Scorers: a request -> a float in [0, 1], "how much does this need a stronger tier".

- ``heuristic``: a cheap baseline from the prompt's length and shape;
- ``random``: the baseline every router is compared against (seeded);
- ``learned``: a model trained by ``rung router train`` (see ``rung.routing.learned``).

Every scorer reads a request through ``rung.routing.steps``: the text scored is the
user's task (the last user message), never a tool's output, cut at ``MAX_PROMPT_CHARS``,
so each step of an agent's loop scores as its task does. The learned scorer reads that
text only (its trained feature space); the heuristic adds the tools offered (choosing
among many tools and writing their arguments is harder for a small model) and counts the
dialogue's turns without the tool traffic (a plain chat scores exactly as before).
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Protocol

from rung.config import ScorerConfig
from rung.errors import ConfigError
from rung.routing.steps import MAX_PROMPT_CHARS, prompt_text, read_step
from rung.types import ChatRequest

__all__ = ["MAX_PROMPT_CHARS", "HeuristicScorer", "LearnedScorer", "RandomScorer", "Scorer",
           "build_scorer", "prompt_text"]

# What a route's router says after the version when the fallback scored the prompt.
OUT_OF_DOMAIN = " (out of domain: fallback)"
# Tools counted by the heuristic: past this many, another tool hardly changes the task.
_MAX_TOOLS = 64


class Scorer(Protocol):
    name: str

    @property
    def version(self) -> str:
        """Which router this is, as each route records it."""
        ...

    # True when scoring may take long enough to stall the event loop (a model to load,
    # an embedding to compute): the gateway then scores in a worker thread.
    blocking: bool

    def score(self, request: ChatRequest) -> float: ...

    def scored(self, request: ChatRequest) -> tuple[float, str]:
        """The score and the router that gave it, as the route records it: the version,
        and for a learned router a prompt out of its domain says it took the fallback."""
        ...


_HARD = re.compile(r"\b(prove|derive|calculate|compute|how many|how much|explain why|"
                   r"step by step|algorithm|implement|function|integral|probability|"
                   r"equation|optimi[sz]e|debug|refactor)\b", re.IGNORECASE)


class HeuristicScorer:
    """Longer prompts, numbers, code, reasoning words, longer dialogues and more tools
    offered score higher."""

    name = "heuristic"
    version = "heuristic"
    blocking = False

    def score(self, request: ChatRequest) -> float:
        step = read_step(request)
        text = step.text
        words = len(text.split())
        x = -2.0 + 0.6 * math.log1p(words / 10)
        x += 0.25 * min(len(re.findall(r"\d+(?:\.\d+)?", text)), 8)
        x += 0.5 * min(len(_HARD.findall(text)), 4)
        x += 1.0 if ("```" in text or re.search(r"\bdef |\{\s*$|;\s*$", text, re.MULTILINE)) else 0.0
        x += 0.3 * max(0, step.dialogue - 2) / 2
        x += 0.15 * math.log1p(min(step.tools, _MAX_TOOLS))
        return 1.0 / (1.0 + math.exp(-x))

    def scored(self, request: ChatRequest) -> tuple[float, str]:
        return self.score(request), self.version


class RandomScorer:
    name = "random"
    version = "random"
    blocking = False

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def score(self, request: ChatRequest) -> float:
        return self._rng.random()

    def scored(self, request: ChatRequest) -> tuple[float, str]:
        return self.score(request), self.version


class LearnedScorer:
    """A router file (``rung router train``), or a ``rung learn`` folder: its promoted
    router, picked up again without a restart when another is promoted or rolled back,
    and the heuristic until the first promotion (:mod:`rung.routing.promoted`)."""

    name = "learned"
    blocking = True

    def __init__(self, path: Path) -> None:
        from rung.routing.heads import load_router
        from rung.routing.promoted import PromotedRouter

        self._promoted: PromotedRouter | None = None
        self._heuristic = HeuristicScorer()
        if path.is_dir():
            self._promoted = PromotedRouter(path)
            return
        if not path.is_file():
            raise ConfigError(f"router model file not found: {path}")
        self._model = load_router(path)
        self._version = str(self._model.meta.get("version") or path.name)

    @property
    def version(self) -> str:
        """Which router scored: ``learned:<version>`` (recorded in each route)."""
        if self._promoted is None:
            return f"learned:{self._version}"
        return "heuristic" if self._promoted.model is None else \
            f"learned:{self._promoted.version}"

    def score(self, request: ChatRequest) -> float:
        return self.scored(request)[0]

    def scored(self, request: ChatRequest) -> tuple[float, str]:
        model = self._promoted.current() if self._promoted is not None else self._model
        version = self.version
        if model is None:
            return self._heuristic.score(request), version
        score, inside = model.judge(read_step(request).text)
        return score, version + ("" if inside else OUT_OF_DOMAIN)


def build_scorer(cfg: ScorerConfig) -> Scorer:
    if cfg.type == "random":
        return RandomScorer(cfg.seed)
    if cfg.type == "learned":
        assert cfg.path is not None  # the config validator guarantees it
        return LearnedScorer(cfg.path)
    return HeuristicScorer()
