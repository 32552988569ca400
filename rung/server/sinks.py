"""Where a finished request goes: small sinks, each handed the one finished record.

The chat handler builds a :class:`Finished` record once per request (errors included)
and hands it to each sink in order: metrics, the key's limits, the trace store (the
client's answer waits for it: a trace is durable before the request is acknowledged),
telemetry, the sampled judge. Each sink does one thing and can be tested alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from rung.auth.limits import KeyLimits
from rung.config import CostConfig
from rung.drift.judging import SampledJudge
from rung.metrics import Metrics
from rung.server.shadow import Shadow
from rung.store.analytics import top_tier_cost
from rung.store.base import TraceStore
from rung.store.trace import Trace
from rung.telemetry import Telemetry
from rung.types import Route


@dataclass(frozen=True, slots=True)
class Finished:
    """A request, done: its trace (what is stored) and its typed route."""

    trace: Trace
    route: Route | None  # None when the request never reached routing (auth, bad body)
    usage_known: bool  # the answering backend reported token usage


class Sink(Protocol):
    async def __call__(self, done: Finished) -> None: ...


class MetricsSink:
    """The Prometheus families of one request: counts, latency, tokens, cost, tool calls,
    routing."""

    def __init__(self, metrics: Metrics, *, top_cost: CostConfig) -> None:
        self._m = metrics
        self._top = top_cost

    async def __call__(self, done: Finished) -> None:
        m, t, route = self._m, done.trace, done.route
        tier = t.tier or "none"
        m.requests.labels(tier, t.status).inc()
        if t.status == "ok":
            m.latency.labels(tier).observe(t.latency_ms / 1000)
            if t.ttft_ms is not None:
                m.ttft.labels(tier).observe(t.ttft_ms / 1000)
            m.tokens.labels(tier, "prompt").inc(t.input_tokens)
            m.tokens.labels(tier, "completion").inc(t.output_tokens)
            m.cost.labels(tier).inc(t.cost)
            if done.usage_known:
                m.cost_top.inc(top_tier_cost(t, self._top))
            if t.tools is not None:
                for name in t.tool_use.called:
                    m.tool_calls.labels(tier, m.tool_label(name)).inc()
        if route is None:
            return
        if route.score is not None:
            m.router_score.observe(route.score)
        for attempt in route.attempts:
            for v in attempt.verdicts:
                m.verifier_score.labels(v.name).observe(v.score)
            if attempt.outcome.moved_on:
                m.escalations.labels(attempt.tier, attempt.outcome.value).inc()


class LimitsSink:
    """Charges the request's tokens and cost to its API key's rate limits and budgets."""

    def __init__(self, limiter: KeyLimits) -> None:
        self._limiter = limiter

    async def __call__(self, done: Finished) -> None:
        t = done.trace
        if t.key_id is not None:
            await self._limiter.charge(t.key_id, tokens=t.input_tokens + t.output_tokens,
                                       cost=t.cost)


class StoreSink:
    """Writes the trace; returns once it is durable (a cancelled request still writes)."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store

    async def __call__(self, done: Finished) -> None:
        await asyncio.shield(self._store.write_soon(done.trace))


class TelemetrySink:
    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    async def __call__(self, done: Finished) -> None:
        self._telemetry.emit(done.trace, time.time_ns(), done.route)


class ShadowSink:
    def __init__(self, shadow: Shadow) -> None:
        self._shadow = shadow

    async def __call__(self, done: Finished) -> None:
        self._shadow.maybe(done.trace)


class JudgeSink:
    def __init__(self, judge: SampledJudge) -> None:
        self._judge = judge

    async def __call__(self, done: Finished) -> None:
        self._judge.maybe(done.trace)
