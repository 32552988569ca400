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

from rung import ttc
from rung.backends.base import Backend
from rung.config import TierConfig
from rung.cost import cost_of
from rung.errors import BackendError, BackendTimeout, NoTierAvailable, Overloaded
from rung.routing.policy import combine
from rung.types import Answer, Attempt, ChatRequest, Chunk, Outcome, Route
from rung.verify.base import Generate, Verifier

_FAILURES = (BackendError, Overloaded)


@dataclass
class RouteDraft:
    """The route while the request is under way: the cascade and the gateway fill it in,
    :meth:`freeze` gives everybody else the frozen :class:`~rung.types.Route`. The
    current tier's attempt stays open (a dict of its fields so far) until the next one
    begins: it becomes a frozen :class:`~rung.types.Attempt` once, when frozen."""

    requested: str
    tier: str | None = None
    reason: str = ""
    score: float | None = None
    router_ms: float = 0.0
    start: int = 0
    escalations: int = 0
    cost: float = 0.0
    compute_s: float | None = None
    router: str | None = None
    attempts: list[Attempt] = field(default_factory=list)  # the closed ones
    _open: dict[str, Any] | None = None

    def spend(self, cost: float, compute_s: float | None) -> None:
        self.cost += cost
        if compute_s is not None:
            self.compute_s = (self.compute_s or 0.0) + compute_s

    def begin(self, tier: str) -> None:
        if self._open is not None:
            self.attempts.append(Attempt(**self._open))
        self._open = {"tier": tier, "outcome": Outcome.PENDING, "start": time.time()}

    def settle(self, **changes: Any) -> None:
        """Record how the current attempt went."""
        assert self._open is not None
        self._open.update(changes)

    def elapsed_ms(self) -> float:
        """Since the current attempt began."""
        assert self._open is not None
        return float((time.time() - self._open["start"]) * 1000)

    def freeze(self) -> Route:
        attempts = self.attempts if self._open is None else \
            [*self.attempts, Attempt(**self._open)]
        return Route(requested=self.requested, tier=self.tier, reason=self.reason,
                     score=self.score, router_ms=self.router_ms, start=self.start,
                     escalations=self.escalations, cost=self.cost, compute_s=self.compute_s,
                     attempts=tuple(attempts), router=self.router)


class Reply:
    """A lazy answer (as ``llm``'s Response): iterate its chunks, then read its route.

    Nothing runs until the first chunk is asked for; errors raised before any text exists
    (every tier down, a full queue) come out of that first step. :attr:`route` can be
    read at any time and is complete once the chunks are exhausted (or the reply closed).
    """

    def __init__(self, draft: RouteDraft, chunks: AsyncGenerator[Chunk, None]) -> None:
        self._draft = draft
        self._chunks = chunks
        self._final: Route | None = None

    @property
    def route(self) -> Route:
        if self._final is not None:
            return self._final
        route = self._draft.freeze()
        if getattr(self._chunks, "ag_frame", None) is None:  # finished or closed: final
            self._final = route
        return route

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    async def __anext__(self) -> Chunk:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()


async def _with_deadline(it: AsyncIterator[Chunk], seconds: float,
                         tier: str) -> AsyncGenerator[Chunk, None]:
    """Apply one deadline to a whole stream, without a timeout spanning yields. Closing
    this closes the backend's stream too (at once, not when it is garbage-collected)."""
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(it.__anext__(), deadline - time.monotonic())
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise BackendTimeout(f"tier {tier}: no complete answer within {seconds} s") \
                    from exc
            yield chunk
    finally:
        await _close(it)


async def _close(it: AsyncIterator[Chunk]) -> None:
    """Close a backend's stream now (an async generator; not at garbage collection)."""
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


class Cascade:
    def __init__(self, tiers: Sequence[TierConfig], backends: Mapping[str, Backend],
                 verifiers: Mapping[str, Sequence[Verifier]]) -> None:
        self._tiers = {t.name: t for t in tiers}
        self._backends = backends
        self._verifiers = verifiers

    def _stream(self, tier: str, request: ChatRequest,
                route: RouteDraft | None = None) -> AsyncIterator[Chunk]:
        """Tier ``tier``'s answer within its deadline. With ``route`` (the request's own
        answer, not a verifier's call) under the test-time-compute strategy its
        ``reasoning_effort`` asks of this tier, recorded in the route's attempt."""
        chunks = self._effort(tier, request, route)
        seconds = self._tiers[tier].timeout_s
        return chunks if seconds is None else _with_deadline(chunks, seconds, tier)

    def _effort(self, tier: str, request: ChatRequest,
                route: RouteDraft | None) -> AsyncIterator[Chunk]:
        backend = self._backends[tier]
        t = self._tiers[tier]
        effort = request.reasoning_effort or t.effort_default
        if effort is None:
            return backend.stream(request)
        strategy = ttc.strategy_for(effort, local=t.backend.type == "llama", mapping=t.effort)
        if strategy.kind == "upstream":
            if route is not None:
                route.settle(strategy={"name": "upstream", "effort": effort})
            return backend.stream(dataclasses.replace(request, reasoning_effort=effort))
        plain = dataclasses.replace(request, reasoning_effort=None)
        if route is None:  # a verifier's own call: as asked, no more
            return backend.stream(plain)
        if not ttc.applies(strategy, plain):
            note = {} if strategy.kind == "direct" else \
                {"skipped": f"{strategy}: not for tool calls or JSON answers"}
            route.settle(strategy={"name": "direct", "effort": effort, **note})
            return backend.stream(plain)
        return ttc.run(strategy, backend.stream, plain,
                       lambda d: route.settle(strategy={**d, "effort": effort}))

    async def generate(self, tier: str, request: ChatRequest,
                       route: RouteDraft | None = None) -> Answer:
        """One whole answer from one tier (also what verifiers call, without ``route``)."""
        answer = Answer(tier=tier)
        t0 = time.perf_counter()
        stream = self._stream(tier, request, route)
        try:
            async for chunk in stream:
                answer.chunks.append(chunk)
        finally:
            await _close(stream)
        answer.seconds = time.perf_counter() - t0
        return answer

    def _cost(self, tier: str, answer: Answer) -> float:
        # A local tier's cost is its compute, not its wall time: time spent waiting in
        # the queue, or sharing a batched step with other requests, is not this answer's.
        seconds = answer.compute_s if answer.compute_s is not None else answer.seconds
        return cost_of(self._tiers[tier].cost, answer.usage, seconds)

    def _spending(self, route: RouteDraft) -> Generate:
        """``generate`` for verifiers, adding what their own generations cost to ``route``."""
        async def generate(tier: str, request: ChatRequest) -> Answer:
            answer = await self.generate(tier, request)
            route.spend(self._cost(tier, answer), answer.compute_s)
            return answer
        return generate

    def _answered(self, route: RouteDraft, got: Answer, **changes: object) -> None:
        """Settle the current attempt with what the answer ``got`` was and cost."""
        cost = self._cost(got.tier, got)
        route.spend(cost, got.compute_s)
        route.settle(generate_ms=got.seconds * 1000, usage=got.usage, queue_ms=got.queue_ms,
                     compute_s=got.compute_s, cost=cost, sampling=got.sampling, **changes)

    async def _verified(self, name: str, request: ChatRequest,
                        route: RouteDraft) -> tuple[Answer, bool]:
        """Buffer tier ``name``'s answer and run its verifiers: (answer, accepted).
        Records everything in the route's current attempt; a failing tier's error is
        re-raised."""
        checks = self._verifiers[name]
        wants_lp = any(v.needs_logprobs for v in checks)
        req = dataclasses.replace(request, logprobs=True) if wants_lp else request
        try:
            answer = await self.generate(name, req, route)
        except _FAILURES as exc:
            route.settle(outcome=exc.outcome, ms=route.elapsed_ms())
            raise
        t_verify = time.perf_counter()
        verdicts = tuple([await v.verify(request, answer, self._spending(route))
                          for v in checks])
        decision = combine(verdicts, self._tiers[name].verify_rule)
        verify_ms = (time.perf_counter() - t_verify) * 1000
        if decision.accept:
            self._answered(route, answer, outcome=Outcome.ANSWERED, verdicts=verdicts,
                           verified=True, verify_ms=verify_ms, ms=route.elapsed_ms())
            return answer, True
        # The rejected answer stays in the trace.
        self._answered(route, answer, outcome=Outcome.REJECTED, verdicts=verdicts,
                       verified=True, verify_ms=verify_ms, ms=route.elapsed_ms(),
                       why=decision.reason, answer=answer.text)
        route.escalations += 1
        return answer, False

    async def run(self, request: ChatRequest, route: RouteDraft, plan: Sequence[str], *,
                  verify: bool) -> AsyncGenerator[Chunk, None]:
        """The chunks of the answer; fills in ``route`` as it goes."""
        rejected: Answer | None = None
        last_error: Exception | None = None
        for i, name in enumerate(plan):
            route.begin(name)
            if verify and i < len(plan) - 1 and self._verifiers.get(name):
                try:
                    answer, accepted = await self._verified(name, request, route)
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
            stream = self._stream(name, request, route)
            try:
                async for chunk in stream:
                    if not streamed.chunks:
                        route.tier = name
                        route.settle(outcome=Outcome.ANSWERED)
                    streamed.chunks.append(chunk)
                    yield chunk
            except _FAILURES as exc:
                route.settle(outcome=exc.outcome)
                last_error = exc
                if streamed.chunks or len(plan) == 1:
                    raise  # mid-stream, or a pinned tier: the real cause, not a 503
                continue
            finally:
                await _close(stream)
                streamed.seconds = time.perf_counter() - t0
                cost = self._cost(name, streamed)
                route.spend(cost, streamed.compute_s)
                route.settle(ms=streamed.seconds * 1000, cost=cost,
                             compute_s=streamed.compute_s)
            route.tier = name
            route.settle(outcome=Outcome.ANSWERED, usage=streamed.usage,
                         generate_ms=streamed.seconds * 1000, queue_ms=streamed.queue_ms,
                         sampling=streamed.sampling)
            return
        if rejected is not None:
            route.tier = rejected.tier
            route.reason += "; every later tier failed: returning the rejected answer"
            for chunk in rejected.chunks:
                yield chunk
            return
        raise NoTierAvailable(f"No tier could answer: {last_error}") from last_error
