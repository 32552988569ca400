"""OpenTelemetry spans for each request and each tier call, with the GenAI semantic
conventions. Off by default at no cost: without an exporter nothing is imported and no
span is built. Spans are emitted when a request finishes, from its trace and route
(each tier attempt carries its start time and duration), so the hot path stays free of
telemetry calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rung.config import Config, LlamaBackendConfig
from rung.store.trace import Trace
from rung.types import Outcome, Route

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


class Telemetry:
    def __init__(self, config: Config, exporter: SpanExporter) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._provider = TracerProvider(resource=Resource.create(
            {"service.name": config.telemetry.service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("rung")
        self._tiers = {t.name: t for t in config.tiers}

    @classmethod
    def from_config(cls, config: Config) -> Telemetry | None:
        if not config.telemetry.otlp_endpoint:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(config, OTLPSpanExporter(endpoint=config.telemetry.otlp_endpoint))

    def _tier_attrs(self, tier: str) -> dict[str, Any]:
        cfg = self._tiers.get(tier)
        if cfg is None:
            return {}
        b = cfg.backend
        if isinstance(b, LlamaBackendConfig):
            return {"gen_ai.provider.name": "llama.cpp", "gen_ai.request.model": b.model}
        return {"gen_ai.provider.name": "openai", "gen_ai.request.model": b.model,
                "server.address": b.base_url}

    def emit(self, trace: Trace, end_ns: int, route: Route | None = None) -> None:
        """One ``chat`` (or ``embeddings``) span for the request, a child per tier
        attempt (``route``: the trace's typed route, when the caller has it already)."""
        from opentelemetry import trace as otel
        from opentelemetry.trace import Status, StatusCode

        route = route if route is not None else trace.routing
        start_ns = int(trace.time * 1e9)
        op = trace.endpoint  # "chat", or "embeddings"
        span = self._tracer.start_span(
            f"{op} {trace.model or '?'}", kind=otel.SpanKind.SERVER, start_time=start_ns,
            attributes={
                "gen_ai.operation.name": op, "gen_ai.provider.name": "rung",
                "gen_ai.request.model": trace.model, "gen_ai.response.model": trace.tier or "",
                "gen_ai.response.id": trace.id,
                "gen_ai.usage.input_tokens": trace.input_tokens,
                "gen_ai.usage.output_tokens": trace.output_tokens,
                "rung.status": trace.status, "rung.escalated": trace.escalated,
                "rung.cost": trace.cost, "rung.route.reason": route.reason,
                **({"rung.router.score": trace.score} if trace.score is not None else {}),
                **_tool_attrs(trace),
            })
        if trace.status != "ok":
            span.set_status(Status(StatusCode.ERROR, trace.error or trace.status))
        ctx = otel.set_span_in_context(span)
        for a in route.attempts:
            t0 = int(a.start * 1e9)
            usage = a.usage
            child = self._tracer.start_span(
                f"chat {a.tier}", context=ctx, kind=otel.SpanKind.CLIENT, start_time=t0,
                attributes={"gen_ai.operation.name": "chat", **self._tier_attrs(a.tier),
                            "gen_ai.usage.input_tokens": usage.prompt_tokens if usage else 0,
                            "gen_ai.usage.output_tokens": (usage.completion_tokens
                                                           if usage else 0),
                            "rung.tier": a.tier, "rung.outcome": a.outcome.value,
                            "rung.verdicts": ",".join(
                                f"{v.name}={v.score:.3f}" for v in a.verdicts)})
            if a.outcome not in (Outcome.ANSWERED, Outcome.REJECTED):
                child.set_status(Status(StatusCode.ERROR, a.outcome.value))
            child.end(end_time=t0 + int((a.ms or 0) * 1e6))
        span.end(end_time=end_ns)

    def shutdown(self) -> None:
        self._provider.shutdown()


def _tool_attrs(trace: Trace) -> dict[str, Any]:
    """A tool-call step's tools offered and calls made, by name only (arguments stay out
    of spans, as they stay out of redacted traces)."""
    if trace.tools is None:
        return {}
    use = trace.tool_use
    return {"rung.tools.offered": list(use.offered),
            "rung.tool_calls": [c.name for c in use.calls]}
