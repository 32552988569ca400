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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
    :meth:`freeze` gives everybody else the frozen :class:`~rung.types.Route`."""

    requested: str
    tier: str | None = None
    reason: str = ""
    score: float | None = None
    router_ms: float = 0.0
    start: int = 0
    escalations: int = 0
    cost: float = 0.0
    compute_s: float | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def spend(self, cost: float, compute_s: float | None) -> None:
        self.cost += cost
        if compute_s is not None:
            self.compute_s = (self.compute_s or 0.0) + compute_s

    def begin(self, tier: str) -> None:
        self.attempts.append(Attempt(tier=tier, outcome=Outcome.PENDING, start=time.time()))

    def settle(self, **changes: object) -> None:
        """Record how the current (last) attempt went."""
        self.attempts[-1] = dataclasses.replace(self.attempts[-1], **changes)  # type: ignore[arg-type]

    def freeze(self) -> Route:
        return Route(requested=self.requested, tier=self.tier, reason=self.reason,
                     score=self.score, router_ms=self.router_ms, start=self.start,
                     escalations=self.escalations, cost=self.cost, compute_s=self.compute_s,
                     attempts=tuple(self.attempts))


class Reply:
    """A lazy answer (as ``llm``'s Response): iterate its chunks, then read its route.

    Nothing runs until the first chunk is asked for; errors raised before any text exists
    (every tier down, a full queue) come out of that first step. :attr:`route` can be
    read at any time and is complete once the chunks are exhausted (or the reply closed).
    """

    def __init__(self, draft: RouteDraft,
                 run: Callable[[RouteDraft], AsyncGenerator[Chunk, None]]) -> None:
        self._draft = draft
        self._chunks = run(draft)

    @property
    def route(self) -> Route:
        return self._draft.freeze()

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    async def __anext__(self) -> Chunk:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()

    async def answer(self) -> Answer:
        """Every chunk, buffered (closes the reply)."""
        answer = Answer(tier="")
        t0 = time.perf_counter()
        try:
            async for chunk in self._chunks:
                answer.chunks.append(chunk)
        finally:
            await self._chunks.aclose()
        answer.tier = self._draft.tier or ""
        answer.seconds = time.perf_counter() - t0
        return answer


async def _with_deadline(it: AsyncIterator[Chunk], seconds: float | None,
                         tier: str) -> AsyncGenerator[Chunk, None]:
    """Apply one deadline to a whole stream, without a timeout spanning yields. Closing
    this closes the backend's stream too (at once, not when it is garbage-collected)."""
    try:
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
                raise BackendTimeout(f"tier {tier}: no complete answer within {seconds} s") \
                    from exc
            yield chunk
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


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
                     compute_s=got.compute_s, cost=cost, **changes)

    def _elapsed_ms(self, route: RouteDraft) -> float:
        return (time.time() - route.attempts[-1].start) * 1000

    async def _verified(self, name: str, request: ChatRequest,
                        route: RouteDraft) -> tuple[Answer, bool]:
        """Buffer tier ``name``'s answer and run its verifiers: (answer, accepted).
        Records everything in the route's current attempt; a failing tier's error is
        re-raised."""
        checks = self._verifiers[name]
        wants_lp = any(v.needs_logprobs for v in checks)
        req = dataclasses.replace(request, logprobs=True) if wants_lp else request
        try:
            answer = await self.generate(name, req)
        except _FAILURES as exc:
            route.settle(outcome=exc.outcome, ms=self._elapsed_ms(route))
            raise
        t_verify = time.perf_counter()
        verdicts = tuple([await v.verify(request, answer, self._spending(route))
                          for v in checks])
        decision = combine(verdicts, self._tiers[name].verify_rule)
        verify_ms = (time.perf_counter() - t_verify) * 1000
        if decision.accept:
            self._answered(route, answer, outcome=Outcome.ANSWERED, verdicts=verdicts,
                           verified=True, verify_ms=verify_ms, ms=self._elapsed_ms(route))
            return answer, True
        # The rejected answer stays in the trace.
        self._answered(route, answer, outcome=Outcome.REJECTED, verdicts=verdicts,
                       verified=True, verify_ms=verify_ms, ms=self._elapsed_ms(route),
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
            stream = self._stream(name, request)
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
                await stream.aclose()
                streamed.seconds = time.perf_counter() - t0
                cost = self._cost(name, streamed)
                route.spend(cost, streamed.compute_s)
                route.settle(ms=streamed.seconds * 1000, cost=cost,
                             compute_s=streamed.compute_s)
            route.tier = name
            route.settle(outcome=Outcome.ANSWERED, usage=streamed.usage,
                         generate_ms=streamed.seconds * 1000, queue_ms=streamed.queue_ms)
            return
        if rejected is not None:
            route.tier = rejected.tier
            route.reason += "; every later tier failed: returning the rejected answer"
            for chunk in rejected.chunks:
                yield chunk
            return
        raise NoTierAvailable(f"No tier could answer: {last_error}") from last_error
