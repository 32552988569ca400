"""``POST /v1/chat/completions``: parse, route, answer, account, trace.

Every request that reaches this handler leaves exactly one trace, errors included, and
the trace is committed before the client gets the end of the answer (the body of a
non-streaming reply; ``[DONE]`` of a stream).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rung.auth.access import Access
from rung.auth.keys import ApiKey
from rung.backends.base import Chunk, TokenLogprob, Usage
from rung.cascade import Route
from rung.config import Config, CostConfig
from rung.cost import top_tier_cost
from rung.drift.judging import SampledJudge
from rung.errors import PayloadTooLarge, RungError
from rung.gateway import Gateway
from rung.metrics import Metrics
from rung.server import wire
from rung.server.errors import error_response
from rung.store.base import TraceStore
from rung.store.trace import Trace, prompt_hash
from rung.telemetry import Telemetry


def route_headers(route: Route) -> dict[str, str]:
    return {"x-rung-tier": route.tier or "", "x-rung-route": route.header()}


@dataclass
class Exchange:
    """One request's accounting: metrics and its trace."""

    metrics: Metrics
    store: TraceStore
    redact: bool
    trace: Trace
    t0: float = field(default_factory=time.perf_counter)
    t_first: float | None = None
    route: Route | None = None
    finished: bool = False
    access: Access | None = None
    key: ApiKey | None = None
    telemetry: Telemetry | None = None
    top_cost: CostConfig | None = None  # the last tier's cost model, for cost saved
    judge: SampledJudge | None = None

    def first_token(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()

    async def finish(self, *, status: str = "ok", usage: Usage | None = None,
                     text: str | None = None, error: str | None = None) -> None:
        if self.finished:  # e.g. the client left while [DONE] was being written
            return
        self.finished = True
        t, route = self.trace, self.route
        tier = (route.tier if route else None) or "none"
        t.status, t.error, t.response = status, error, text
        t.latency_ms = (time.perf_counter() - self.t0) * 1000
        t.ttft_ms = (self.t_first - self.t0) * 1000 if self.t_first is not None else None
        if usage is not None:
            t.input_tokens, t.output_tokens = usage.prompt_tokens, usage.completion_tokens
        if route is not None:
            t.tier, t.cost, t.score = route.tier, route.cost, route.score
            t.escalated = route.escalations > 0 or any(
                a.get("outcome") not in ("answered", "pending") for a in route.attempts)
            t.route = route.as_dict()
        if self.redact:
            t.messages, t.response = None, None
            for attempt in t.route.get("attempts", ()):
                attempt.pop("answer", None)
        m = self.metrics
        m.requests.labels(tier, status).inc()
        if status == "ok":
            m.latency.labels(tier).observe(t.latency_ms / 1000)
            if t.ttft_ms is not None:
                m.ttft.labels(tier).observe(t.ttft_ms / 1000)
            m.tokens.labels(tier, "prompt").inc(t.input_tokens)
            m.tokens.labels(tier, "completion").inc(t.output_tokens)
            m.cost.labels(tier).inc(t.cost)
            if self.top_cost is not None and usage is not None:
                m.cost_top.inc(top_tier_cost(t, self.top_cost))
        if route is not None:
            if route.score is not None:
                m.router_score.observe(route.score)
            for attempt in route.attempts:
                for v in attempt.get("verdicts", ()):
                    m.verifier_score.labels(v["name"]).observe(v["score"])
                outcome = attempt.get("outcome")
                if outcome not in ("answered", "pending"):
                    m.escalations.labels(attempt["tier"], outcome).inc()
        if self.access is not None and self.key is not None:
            self.access.record(self.key, tokens=t.input_tokens + t.output_tokens, cost=t.cost)
        await asyncio.shield(self.store.write(t))
        if self.telemetry is not None:
            self.telemetry.emit(t, time.time_ns())
        if self.judge is not None:
            self.judge.maybe(t)


async def chat_completions(request: web.Request, *, config: Config, gateway: Gateway,
                           metrics: Metrics, store: TraceStore, access: Access | None,
                           telemetry: Telemetry | None = None,
                           judge: SampledJudge | None = None) -> web.StreamResponse:
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    ex = Exchange(metrics, store, config.store.redact,
                  Trace(id=rid, time=time.time(), model=""), access=access,
                  telemetry=telemetry, top_cost=config.ladder_tiers[-1].cost, judge=judge)
    if access is not None:
        try:
            ex.key = access.authenticate(request.headers.get("Authorization"))
            ex.trace.key_id = ex.key.id
            access.admit(ex.key)
        except RungError as exc:
            await ex.finish(status=exc.code or "error", error=exc.message)
            return error_response(exc)
    limit = config.server.max_body_bytes
    try:
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        too_large = PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        await ex.finish(status=too_large.code, error=too_large.message)
        return error_response(too_large)
    try:
        body, req = wire.parse_chat_request(raw, max_messages=config.server.max_messages)
        ex.trace.model, ex.trace.stream = body.model, bool(body.stream)
        ex.trace.prompt_hash = prompt_hash(req.messages)
        ex.trace.messages = [{"role": m.role, "content": m.content} for m in req.messages]
        opts = body.rung
        ex.route = route = Route(requested=body.model)
        stream = gateway.stream(body.model, req, route, pin=opts.tier if opts else None,
                                thresholds=opts.thresholds if opts else None)
    except RungError as exc:
        await ex.finish(status=exc.code or "error", error=exc.message)
        return error_response(exc)
    try:
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _stream_response(request, stream, ex, rid=rid, route=route,
                                          include_usage=include_usage,
                                          with_logprobs=req.logprobs)
        return await _full_response(stream, ex, rid=rid, route=route,
                                    with_logprobs=req.logprobs)
    except RungError as exc:
        await ex.finish(status=exc.code or "error", error=exc.message)
        resp = error_response(exc)
        resp.headers.update(route_headers(route))
        return resp
    finally:
        await stream.aclose()


async def _full_response(stream: Any, ex: Exchange, *, rid: str, route: Route,
                         with_logprobs: bool) -> web.Response:
    parts: list[str] = []
    lps: list[TokenLogprob] = []
    last = Chunk()
    async for chunk in stream:
        ex.first_token()
        parts.append(chunk.text)
        lps.extend(chunk.logprobs)
        last = chunk
    text = "".join(parts)
    await ex.finish(usage=last.usage, text=text)
    body = wire.completion_json(
        rid=rid, model=route.tier or route.requested, text=text,
        logprobs=lps if with_logprobs else None, finish_reason=last.finish_reason,
        usage=last.usage, rung=route.as_dict(answers=False))
    return web.Response(body=body, content_type="application/json",
                        headers=route_headers(route))


async def _stream_response(request: web.Request, stream: Any, ex: Exchange, *, rid: str,
                           route: Route, include_usage: bool,
                           with_logprobs: bool) -> web.StreamResponse:
    # Wait for the first chunk before sending headers, so that errors raised before any
    # text exists (bad request, full queue, every tier down) keep their HTTP status.
    it = stream.__aiter__()
    try:
        first: Chunk | None = await it.__anext__()
    except StopAsyncIteration:
        first = None
    ex.first_token()
    created = int(time.time())
    model = route.tier or route.requested
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        **route_headers(route)})
    await resp.prepare(request)
    await resp.write(wire.chunk_event(rid=rid, model=model, created=created, role=True))
    last = Chunk()
    parts: list[str] = []
    try:
        chunk = first
        while chunk is not None:
            if chunk.text or (with_logprobs and chunk.logprobs) or chunk.finish_reason:
                await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                                  chunk=chunk, with_logprobs=with_logprobs))
            parts.append(chunk.text)
            last = chunk
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                chunk = None
        if last.finish_reason is None:
            await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                              chunk=Chunk(finish_reason="stop")))
        if include_usage:
            await resp.write(wire.usage_event(
                rid=rid, model=model, created=created, usage=last.usage,
                rung=route.as_dict(answers=False)))
        await ex.finish(usage=last.usage, text="".join(parts))
        await resp.write(wire.DONE_EVENT)
    except RungError as exc:
        # Headers are gone: report the error as a last event, as OpenAI does.
        await ex.finish(status=exc.code or "error", usage=last.usage, text="".join(parts),
                        error=exc.message)
        await resp.write(b"data: " + error_response(exc).body + b"\n\n")  # type: ignore[operator]
    except (ConnectionResetError, asyncio.CancelledError):
        await ex.finish(status="client_closed", usage=last.usage, text="".join(parts),
                        error="the client closed the connection")
        raise
    return resp
