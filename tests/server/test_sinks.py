"""Each sink alone: handed one finished record, it does its one thing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rung.auth.keys import ApiKey
from rung.auth.limits import Limiter
from rung.cascade import Cascade
from rung.drift.judging import SampledJudge
from rung.errors import RateLimited
from rung.metrics import TOOL_LABELS, Metrics
from rung.server.sinks import (
    Finished,
    JudgeSink,
    LimitsSink,
    MetricsSink,
    StoreSink,
    TelemetrySink,
)
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace
from rung.telemetry import Telemetry
from rung.types import Attempt, Outcome, Route, Usage, Verdict
from tests.conftest import config_of
from tests.test_cascade import Scripted, _tier

ROUTE = Route(
    requested="rung", tier="big", reason="score 0.700 >= 0.500", score=0.7, cost=2.0,
    escalations=1,
    attempts=(
        Attempt("small", Outcome.REJECTED, 1.0, ms=5.0, verified=True,
                verdicts=(Verdict("json", 1.0, False, "not JSON"),), usage=Usage(7, 3)),
        Attempt("mid", Outcome.TIMEOUT, 1.1, ms=30.0),
        Attempt("big", Outcome.ANSWERED, 1.2, ms=9.0, usage=Usage(7, 2)),
    ))


def _done(**trace: object) -> Finished:
    t = Trace(id="chatcmpl-1", time=1.0, model="rung", tier="big", cost=2.0,
              input_tokens=7, output_tokens=2, latency_ms=44.0, ttft_ms=40.0,
              messages=[{"role": "user", "content": "hi"}], response='{"a": 1}',
              route=ROUTE.as_dict(), escalated=True)
    for k, v in trace.items():
        setattr(t, k, v)
    return Finished(t, ROUTE, usage_known=True)


def _sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_metrics_sink_counts_the_request_and_each_tier_it_moved_past() -> None:
    m = Metrics(list)
    top = config_of(tiers=[{"name": "t", "backend": {"type": "openai", "base_url":
                    "http://x/v1", "model": "m"}, "cost": {"output_per_mtok": 1e6}}]
                    ).ladder_tiers[-1].cost
    asyncio.run(MetricsSink(m, top_cost=top)(_done()))
    assert _sample(m, "rung_requests_total", tier="big", status="ok") == 1
    assert _sample(m, "rung_escalations_total", tier="small", reason="rejected") == 1
    assert _sample(m, "rung_escalations_total", tier="mid", reason="BackendTimeout") == 1
    assert _sample(m, "rung_escalations_total", tier="big", reason="answered") is None
    assert _sample(m, "rung_verifier_score_count", verifier="json") == 1
    assert _sample(m, "rung_router_score_count") == 1
    assert _sample(m, "rung_cost_total", tier="big") == 2.0
    assert _sample(m, "rung_cost_if_top_tier_total") == 2.0  # 2 output tokens at 1 each


def test_metrics_sink_counts_an_error_without_a_route() -> None:
    m = Metrics(list)
    done = Finished(Trace(id="x", time=1.0, model="", status="invalid_api_key"), None,
                    usage_known=False)
    asyncio.run(MetricsSink(m, top_cost=config_of().ladder_tiers[-1].cost)(done))
    assert _sample(m, "rung_requests_total", tier="none", status="invalid_api_key") == 1
    assert _sample(m, "rung_request_latency_seconds_count", tier="none") is None


def test_metrics_sink_caps_the_distinct_tool_names_it_labels() -> None:
    """Clients choose tool names: past TOOL_LABELS distinct ones, calls count as "other";
    an error's calls are not counted (only answered requests')."""
    m = Metrics(list)
    sink = MetricsSink(m, top_cost=config_of().ladder_tiers[-1].cost)

    def calls(*names: str, status: str = "ok") -> Finished:
        tools = {"calls": [{"id": f"c{i}", "name": n} for i, n in enumerate(names)]}
        return _done(tools=tools, status=status)

    asyncio.run(sink(calls("get_weather", "get_weather")))
    asyncio.run(sink(calls("get_weather", status="backend_timeout")))
    for i in range(TOOL_LABELS - 1):
        asyncio.run(sink(calls(f"tool_{i}")))
    asyncio.run(sink(calls("late_a", "late_b", "tool_0", "get_weather")))
    assert _sample(m, "rung_tool_calls_total", tier="big", tool="get_weather") == 3
    assert _sample(m, "rung_tool_calls_total", tier="big", tool="tool_0") == 2
    assert _sample(m, "rung_tool_calls_total", tier="big", tool="late_a") is None
    assert _sample(m, "rung_tool_calls_total", tier="big", tool="other") == 2
    tools = {s.labels["tool"] for f in m.registry.collect() if f.name == "rung_tool_calls"
             for s in f.samples}
    assert len(tools) == TOOL_LABELS + 1  # the capped names and "other"


def test_limits_sink_charges_the_key() -> None:
    limiter = Limiter(lambda key_id, since: 0.0)
    key = ApiKey(id="k1", name="k", created=0.0, revoked=None, admin=False, rpm=None,
                 tpm=10, daily_budget=2.5, monthly_budget=None)
    other = dataclasses.replace(key, id="k2")
    sink = LimitsSink(limiter)
    asyncio.run(sink(_done(key_id="k1")))  # 9 tokens, cost 2.0: still under both limits
    limiter.admit(key, time.time())
    asyncio.run(sink(_done(key_id="k1")))
    with pytest.raises(RateLimited, match="tokens per minute"):
        limiter.admit(key, time.time())
    asyncio.run(sink(_done()))  # no key: nothing charged to anybody
    limiter.admit(other, time.time())


def test_store_sink_returns_once_the_trace_is_durable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    try:
        asyncio.run(StoreSink(store)(_done()))
        got = store.get("chatcmpl-1")
    finally:
        store.close()
    assert got is not None and got.routing == Route.from_dict(ROUTE.as_dict(),
                                                              requested="rung")
    assert got.routing.attempts[1].outcome is Outcome.TIMEOUT


def test_telemetry_sink_emits_a_span_per_attempt() -> None:
    exporter = InMemorySpanExporter()
    tel = Telemetry(config_of(), exporter)
    asyncio.run(TelemetrySink(tel)(_done()))
    tel.shutdown()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["chat big", "chat mid", "chat rung", "chat small"]


def test_a_tool_steps_span_names_the_tools_offered_and_called_never_arguments() -> None:
    from rung.store.trace import ToolUse
    from rung.types import ToolCall, ToolSpec

    use = ToolUse.of((ToolSpec("get_weather"), ToolSpec("get_time")), None)
    use = ToolUse(use.offered, None, (ToolCall("c1", "get_weather", '{"city": "Oslo"}'),))
    exporter = InMemorySpanExporter()
    tel = Telemetry(config_of(), exporter)
    asyncio.run(TelemetrySink(tel)(_done(tools=use.as_dict())))
    tel.shutdown()
    [root] = [s for s in exporter.get_finished_spans() if s.name == "chat rung"]
    assert root.attributes is not None
    assert list(root.attributes["rung.tools.offered"]) == ["get_weather", "get_time"]  # type: ignore[arg-type]
    assert list(root.attributes["rung.tool_calls"]) == ["get_weather"]  # type: ignore[arg-type]
    assert "Oslo" not in repr(dict(root.attributes))


def test_judge_sink_judges_a_sampled_answer(tmp_path: Path) -> None:
    judge_backend = Scripted("judge", ["yes"], logprob=-0.01)
    cfg = config_of(tiers=[_tier("judge")])
    store = SqliteStore(tmp_path / "t.db")

    async def go() -> None:
        cascade = Cascade(cfg.tiers, {"judge": judge_backend}, {"judge": []})
        judge = SampledJudge(cascade, store, tier="judge", rate=1.0)
        await JudgeSink(judge)(_done())
        await judge.drain()

    try:
        asyncio.run(go())
        got = store.get("chatcmpl-1")
    finally:
        store.close()
    assert judge_backend.calls and got is not None
    assert got.routing.judged is not None and got.routing.judged.tier == "judge"
