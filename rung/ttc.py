"""Test-time compute as a choice: ``reasoning_effort`` picks how hard a tier works.

A request's ``reasoning_effort`` (OpenAI's levels: ``minimal``, ``low``, ``medium``,
``high``) maps, per tier, to a :class:`Strategy`:

- ``direct``: the request as sent;
- ``step_by_step``: a system instruction to reason step by step and end on the answer;
- ``sc:K``: self-consistency, up to K step-by-step samples whose final answers vote
  (sampled at the request's temperature, or 0.7 when it sets none or 0),
  stopping adaptively once the leading answer is the majority with probability 0.95
  (Beta(leader + 1, runner-up + 1) above one half: Aggarwal et al.'s Adaptive-Consistency
  rule for two candidates); ``sc:K:fixed`` always draws K;
- ``upstream``: an openai tier's default: the field goes to the upstream as sent (its
  reasoning models know it).

A local tier without an ``effort`` map uses :data:`LOCAL_DEFAULT`. Requests with tools
or a JSON response format are answered directly (their answers do not vote), and the
route says so. Every attempt records the strategy it ran and what it drew
(``Attempt.strategy``). ``rung bench models`` names the same strategies as suffixes:
``qwen2.5-coder-0.5b+sc8``, ``+cot``, ``+sc8fixed``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rung.types import ChatRequest, Chunk, Message, Usage
from rung.verify.final import answer_key

Level = Literal["minimal", "low", "medium", "high"]
LEVELS: tuple[Level, ...] = ("minimal", "low", "medium", "high")
STOP_CONFIDENCE = 0.95
SAMPLE_TEMPERATURE = 0.7  # self-consistency's samples, unless the request sets one
STEP_BY_STEP = ("Think step by step. Then give the final answer on the last line, as "
                "'Answer: <answer>'.")


@dataclass(frozen=True, slots=True)
class Strategy:
    kind: Literal["direct", "step_by_step", "self_consistency", "upstream"]
    samples: int = 1  # the most samples self-consistency draws
    adaptive: bool = True

    def __str__(self) -> str:
        if self.kind == "self_consistency":
            return f"sc:{self.samples}" + ("" if self.adaptive else ":fixed")
        return self.kind


DIRECT = Strategy("direct")
UPSTREAM = Strategy("upstream")
LOCAL_DEFAULT: Mapping[Level, str] = {"minimal": "direct", "low": "direct",
                                      "medium": "step_by_step", "high": "sc:8"}
_SC = re.compile(r"^sc:(\d+)(:fixed)?$")
_SUFFIX = re.compile(r"^sc(\d+)(fixed)?$")


def parse_strategy(text: str) -> Strategy:
    """``direct``, ``step_by_step``, ``sc:K``, ``sc:K:fixed`` or ``upstream``; ValueError
    naming the forms otherwise."""
    if text in ("direct", "step_by_step", "upstream"):
        return Strategy(text)  # type: ignore[arg-type]
    m = _SC.match(text)
    if m is not None and 2 <= int(m.group(1)) <= 64:
        return Strategy("self_consistency", int(m.group(1)), adaptive=m.group(2) is None)
    raise ValueError(f"unknown strategy {text!r}: expected direct, step_by_step, sc:K or "
                     "sc:K:fixed (2 <= K <= 64), or upstream")


def strategy_from_suffix(suffix: str) -> Strategy:
    """A ``rung bench models`` candidate's suffix: ``cot``, ``scK`` or ``scKfixed``
    (``direct`` too)."""
    if suffix == "cot":
        return Strategy("step_by_step")
    if suffix == "direct":
        return DIRECT
    m = _SUFFIX.match(suffix)
    if m is not None and 2 <= int(m.group(1)) <= 64:
        return Strategy("self_consistency", int(m.group(1)), adaptive=m.group(2) is None)
    raise ValueError(f"unknown strategy suffix '+{suffix}': expected +cot, +scK or "
                     "+scKfixed (2 <= K <= 64)")


def strategy_for(effort: Level | None, *, local: bool,
                 mapping: Mapping[Level, str] | None) -> Strategy:
    """The strategy a tier runs for ``effort`` (None: not asked, direct)."""
    if effort is None:
        return DIRECT
    if mapping is not None and effort in mapping:
        return parse_strategy(mapping[effort])
    return parse_strategy(LOCAL_DEFAULT[effort]) if local else UPSTREAM


def applies(strategy: Strategy, request: ChatRequest) -> bool:
    """Whether the strategy can change this request's answer: tool calls and JSON answers
    neither reason in prose nor vote."""
    return strategy.kind in ("step_by_step", "self_consistency") and not request.tools \
        and request.response_format.type == "text"


def step_by_step(request: ChatRequest) -> ChatRequest:
    """The request with the step-by-step instruction added to its system turn."""
    msgs = request.messages
    if msgs and msgs[0].role == "system":
        head = Message("system", f"{msgs[0].content}\n\n{STEP_BY_STEP}".strip())
        return dataclasses.replace(request, messages=(head, *msgs[1:]))
    return dataclasses.replace(request, messages=(Message("system", STEP_BY_STEP), *msgs))


def majority_confidence(votes: Counter[str]) -> float:
    """P(the leading answer's share exceeds the runner-up's), with that share ~
    Beta(leader + 1, runner-up + 1): the exact binomial sum for integer counts."""
    ranked = [n for _, n in votes.most_common(2)] + [0, 0]
    a, b = ranked[0] + 1, ranked[1] + 1
    n = a + b - 1
    below = sum(math.comb(n, j) for j in range(a, n + 1)) / (1 << n)  # I_0.5(a, b)
    return 1.0 - below


Stream = Callable[[ChatRequest], AsyncIterator[Chunk]]


async def run(strategy: Strategy, stream: Stream, request: ChatRequest,
              record: Callable[[dict[str, Any]], None]) -> AsyncIterator[Chunk]:
    """The answer's chunks under ``strategy`` (which :func:`applies`). Self-consistency
    buffers its samples and yields the first one that carries the winning answer, its last
    chunk carrying every sample's usage and compute (what the answer cost)."""
    cot = step_by_step(request)
    if strategy.kind == "step_by_step":
        record({"name": "step_by_step", "samples": 1})
        async for chunk in stream(cot):
            yield chunk
        return
    # Samples must differ to vote: a greedy request (temperature 0, as evaluations send)
    # or one without a temperature is sampled at SAMPLE_TEMPERATURE.
    temperature = request.temperature if request.temperature else SAMPLE_TEMPERATURE
    base = request.seed if request.seed is not None else 0
    samples: list[list[Chunk]] = []
    votes: Counter[str] = Counter()
    keys: list[str] = []
    confidence = 0.0
    for i in range(strategy.samples):
        req = dataclasses.replace(cot, temperature=temperature, seed=base + i, stream=False)
        chunks = [c async for c in stream(req)]
        samples.append(chunks)
        key = answer_key("".join(c.text for c in chunks))
        keys.append(key)
        votes[key] += 1
        confidence = majority_confidence(votes)
        if strategy.adaptive and confidence >= STOP_CONFIDENCE:
            break
    winner, count = votes.most_common(1)[0]
    chosen = samples[keys.index(winner)]
    record({"name": "self_consistency", "samples": len(samples), "max": strategy.samples,
            "adaptive": strategy.adaptive, "temperature": temperature,
            "agreement": round(count / len(samples), 3),
            "confidence": round(confidence, 4), "answer": winner[:40]})
    for chunk in chosen[:-1]:
        yield chunk
    last = chosen[-1] if chosen else Chunk()
    yield dataclasses.replace(last, usage=_total_usage(samples),
                              compute_s=_total_compute(samples))


def _total_usage(samples: list[list[Chunk]]) -> Usage | None:
    usages = [u for s in samples if (u := next((c.usage for c in reversed(s) if c.usage),
                                                None)) is not None]
    if not usages:
        return None
    return Usage(sum(u.prompt_tokens for u in usages), sum(u.completion_tokens for u in usages),
                 cached_tokens=sum(u.cached_tokens for u in usages))


def _total_compute(samples: list[list[Chunk]]) -> float | None:
    seconds = [c for s in samples
               if (c := next((x.compute_s for x in reversed(s) if x.compute_s is not None),
                             None)) is not None]
    return sum(seconds) if seconds else None
