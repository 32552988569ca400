"""The cascade loop, written once: route, generate, verify, escalate, fall back.

Used by the server, the CLI and the evaluator through :class:`rung.gateway.Gateway`.
Network and model calls happen only through the backends at its edges, so the loop can
be tested step by step with scripted backends.

For each tier in the plan, cheapest first:

- not the last tier and verifying: buffer the whole answer, run the tier's verifiers,
  combine their verdicts by the tier's rule; accept -> emit it, reject -> next tier;
- otherwise (the last tier, a pinned tier, or ``stream_unverified``): stream it through.

A tier that errors or misses its deadline before producing text hands the request to the
next tier. If every later tier fails after an answer was rejected, the rejected answer is
returned (marked) rather than nothing; if no tier answered at all: NoTierAvailable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rung.backends.base import Backend, ChatRequest, Chunk
from rung.config import TierConfig
from rung.cost import cost_of
from rung.errors import BackendError, BackendTimeout, NoTierAvailable, Overloaded
from rung.routing.policy import combine
from rung.verify.base import Answer, Verifier

_FAILURES = (BackendError, Overloaded)


@dataclass
class Route:
    """Who answered and why; filled in as the request moves through the tiers."""

    requested: str
    tier: str | None = None
    reason: str = ""
    score: float | None = None
    router_ms: float = 0.0
    start: int = 0
    escalations: int = 0
    cost: float = 0.0
    # Model compute the request spent on local tiers, every attempt and verifier included
    # (None when no local tier reported any).
    compute_s: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def spend(self, cost: float, compute_s: float | None) -> None:
        self.cost += cost
        if compute_s is not None:
            self.compute_s = (self.compute_s or 0.0) + compute_s

    def as_dict(self, *, answers: bool = True) -> dict[str, Any]:
        """For the trace (``answers``: each tier's rejected answer too) or, without them,
        for the client."""
        attempts = self.attempts if answers else [
            {k: v for k, v in a.items() if k != "answer"} for a in self.attempts]
        return {"tier": self.tier, "reason": self.reason, "score": self.score,
                "router_ms": round(self.router_ms, 3), "start": self.start,
                "escalations": self.escalations, "cost": self.cost,
                "compute_s": (round(self.compute_s, 6) if self.compute_s is not None
                              else None), "attempts": attempts}

    def header(self) -> str:
        parts = [f"reason={self.reason}"]
        if self.score is not None:
            parts.append(f"score={self.score:.3f}")
        for a in self.attempts:
            verdicts = ",".join(f"{v['name']}={v['score']:.2f}{'+' if v['accept'] else '-'}"
                                for v in a.get("verdicts", ()))
            parts.append(f"{a['tier']}:{a['outcome']}" + (f"({verdicts})" if verdicts else ""))
        return ";".join(parts)


async def _with_deadline(it: AsyncIterator[Chunk], seconds: float | None,
                         tier: str) -> AsyncGenerator[Chunk, None]:
    """Apply one deadline to a whole stream, without a timeout spanning yields."""
    if seconds is None:
        async for chunk in it:
            yield chunk
        return
    deadline = time.monotonic() + seconds
    while True:
        try:
            chunk = await asyncio.wait_for(it.__anext__(), deadline - time.monotonic())
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise BackendTimeout(f"tier {tier}: no complete answer within {seconds} s") from exc
        yield chunk


class Cascade:
    def __init__(self, tiers: Sequence[TierConfig], backends: Mapping[str, Backend],
                 verifiers: Mapping[str, Sequence[Verifier]]) -> None:
        self._tiers = {t.name: t for t in tiers}
        self._backends = backends
        self._verifiers = verifiers

    def _stream(self, tier: str, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        return _with_deadline(self._backends[tier].stream(request),
                              self._tiers[tier].timeout_s, tier)

    async def generate(self, tier: str, request: ChatRequest) -> Answer:
        """One whole answer from one tier (also what verifiers call)."""
        answer = Answer(tier=tier)
        t0 = time.perf_counter()
        stream = self._stream(tier, request)
        try:
            async for chunk in stream:
                answer.chunks.append(chunk)
        finally:
            await stream.aclose()
        answer.seconds = time.perf_counter() - t0
        return answer

    def _cost(self, tier: str, answer: Answer) -> float:
        # A local tier's cost is its compute, not its wall time: time spent waiting in
        # the queue, or sharing a batched step with other requests, is not this answer's.
        seconds = answer.compute_s if answer.compute_s is not None else answer.seconds
        return cost_of(self._tiers[tier].cost, answer.usage, seconds)

    def _charge(self, route: Route, tier: str, answer: Answer,
                attempt: dict[str, Any] | None = None) -> None:
        """Add what ``answer`` cost to ``route`` (and its compute to ``attempt``)."""
        route.spend(self._cost(tier, answer), answer.compute_s)
        if attempt is not None and answer.compute_s is not None:
            attempt["compute_s"] = round(answer.compute_s, 6)

    def _spending(self, route: Route) -> Any:
        """``generate`` for verifiers, adding what their own generations cost to ``route``."""
        async def generate(tier: str, request: ChatRequest) -> Answer:
            answer = await self.generate(tier, request)
            self._charge(route, tier, answer)
            return answer
        return generate

    async def _verified(self, name: str, request: ChatRequest, route: Route,
                        attempt: dict[str, Any]) -> tuple[Answer, bool]:
        """Buffer tier ``name``'s answer and run its verifiers: (answer, accepted).
        Records everything in ``attempt``; a failing tier's error is re-raised."""
        checks = self._verifiers[name]
        wants_lp = any(v.needs_logprobs for v in checks)
        req = dataclasses.replace(request, logprobs=True) if wants_lp else request
        try:
            answer = await self.generate(name, req)
        except _FAILURES as exc:
            attempt["outcome"] = type(exc).__name__
            attempt["ms"] = round((time.time() - attempt["start"]) * 1000, 3)
            raise
        self._charge(route, name, answer, attempt)
        t_verify = time.perf_counter()
        verdicts = [await v.verify(request, answer, self._spending(route)) for v in checks]
        decision = combine(verdicts, self._tiers[name].verify_rule)
        attempt.update(
            generate_ms=round(answer.seconds * 1000, 3),
            verify_ms=round((time.perf_counter() - t_verify) * 1000, 3),
            ms=round((time.time() - attempt["start"]) * 1000, 3),
            verdicts=[dataclasses.asdict(v) for v in verdicts], usage=_usage(answer))
        if answer.queue_ms is not None:
            attempt["queue_ms"] = answer.queue_ms
        if decision.accept:
            attempt["outcome"] = "answered"
            return answer, True
        attempt.update(outcome="rejected", why=decision.reason,
                       answer=answer.text)  # the rejected answer stays in the trace
        route.escalations += 1
        return answer, False

    async def run(self, request: ChatRequest, route: Route, plan: Sequence[str], *,
                  verify: bool) -> AsyncGenerator[Chunk, None]:
        rejected: Answer | None = None
        last_error: Exception | None = None
        for i, name in enumerate(plan):
            attempt: dict[str, Any] = {"tier": name, "outcome": "pending",
                                       "start": time.time()}
            route.attempts.append(attempt)
            if verify and i < len(plan) - 1 and self._verifiers.get(name):
                try:
                    answer, accepted = await self._verified(name, request, route, attempt)
                except _FAILURES as exc:
                    last_error = exc
                    continue
                if accepted:
                    route.tier = name
                    for chunk in answer.chunks:
                        yield chunk
                    return
                rejected = answer
                continue
            t0 = time.perf_counter()
            streamed = Answer(tier=name)
            stream = self._stream(name, request)
            try:
                async for chunk in stream:
                    if not streamed.chunks:
                        route.tier, attempt["outcome"] = name, "answered"
                    streamed.chunks.append(chunk)
                    yield chunk
            except _FAILURES as exc:
                attempt["outcome"], last_error = type(exc).__name__, exc
                if streamed.chunks or len(plan) == 1:
                    raise  # mid-stream, or a pinned tier: the real cause, not a 503
                continue
            finally:
                await stream.aclose()
                streamed.seconds = time.perf_counter() - t0
                attempt["ms"] = round(streamed.seconds * 1000, 3)
                self._charge(route, name, streamed, attempt)
            route.tier = name
            attempt.update(outcome="answered", usage=_usage(streamed),
                           generate_ms=round(streamed.seconds * 1000, 3))
            if streamed.queue_ms is not None:
                attempt["queue_ms"] = streamed.queue_ms
            return
        if rejected is not None:
            route.tier = rejected.tier
            route.reason += "; every later tier failed: returning the rejected answer"
            for chunk in rejected.chunks:
                yield chunk
            return
        raise NoTierAvailable(f"No tier could answer: {last_error}") from last_error


def _usage(answer: Answer) -> list[int] | None:
    u = answer.usage
    return [u.prompt_tokens, u.completion_tokens] if u is not None else None
