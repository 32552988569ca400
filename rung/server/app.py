"""The aiohttp application: ``create_app(config)`` builds it, ``serve`` runs it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from rung.backends.base import Chunk, TokenLogprob, Usage
from rung.config import Config
from rung.errors import RungError
from rung.gateway import Gateway, Route
from rung.metrics import Metrics
from rung.server import wire
from rung.server.errors import error_response, plain_error

log = logging.getLogger("rung.server")

GATEWAY = web.AppKey("gateway", Gateway)
METRICS = web.AppKey("metrics", Metrics)
CONFIG = web.AppKey("config", Config)
_TASKS = web.AppKey("tasks", list)


def _route_headers(route: Route) -> dict[str, str]:
    return {"x-rung-tier": route.tier or "", "x-rung-route": route.header()}


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response:
    if request.content_length is not None and request.content_length > limit:
        return plain_error(413, f"Request body is larger than the limit of {limit} bytes.",
                           code="request_too_large")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return plain_error(413, f"Request body is larger than the limit of {limit} bytes.",
                           code="request_too_large")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app
    config, gateway, metrics = app[CONFIG], app[GATEWAY], app[METRICS]
    raw = await _read_body(request, config.server.max_body_bytes)
    if isinstance(raw, web.Response):
        return raw
    t0 = time.perf_counter()
    try:
        body, req = wire.parse_chat_request(raw, max_messages=config.server.max_messages)
        opts = body.rung
        route = Route(requested=body.model)
        stream = gateway.stream(body.model, req, route, pin=opts.tier if opts else None,
                                thresholds=opts.thresholds if opts else None)
    except RungError as exc:
        return error_response(exc)
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    try:
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _stream_response(request, stream, rid=rid, route=route, t0=t0,
                                          metrics=metrics, include_usage=include_usage,
                                          with_logprobs=req.logprobs)
        return await _full_response(stream, rid=rid, route=route, t0=t0, metrics=metrics,
                                    with_logprobs=req.logprobs)
    except RungError as exc:
        metrics.requests.labels(route.tier or "none", exc.code or "error").inc()
        resp = error_response(exc)
        resp.headers.update(_route_headers(route))
        return resp
    finally:
        await stream.aclose()


def _account(metrics: Metrics, route: Route, usage: Usage | None, t0: float,
             t_first: float | None) -> None:
    tier = route.tier or "none"
    metrics.requests.labels(tier, "ok").inc()
    metrics.latency.labels(tier).observe(time.perf_counter() - t0)
    if t_first is not None:
        metrics.ttft.labels(tier).observe(t_first - t0)
    if usage is not None:
        metrics.tokens.labels(tier, "prompt").inc(usage.prompt_tokens)
        metrics.tokens.labels(tier, "completion").inc(usage.completion_tokens)
    if route.score is not None:
        metrics.router_score.observe(route.score)
    metrics.cost.labels(tier).inc(route.cost)
    for attempt in route.attempts:
        for v in attempt.get("verdicts", ()):
            metrics.verifier_score.labels(v["name"]).observe(v["score"])
        if attempt.get("outcome") == "rejected":
            metrics.escalations.labels(attempt["tier"], "rejected").inc()
        elif attempt.get("outcome") not in (None, "answered"):
            metrics.escalations.labels(attempt["tier"], attempt["outcome"]).inc()


async def _full_response(stream: Any, *, rid: str, route: Route, t0: float, metrics: Metrics,
                         with_logprobs: bool) -> web.Response:
    parts: list[str] = []
    lps: list[TokenLogprob] = []
    last = Chunk()
    t_first: float | None = None
    async for chunk in stream:
        if t_first is None:
            t_first = time.perf_counter()
        parts.append(chunk.text)
        lps.extend(chunk.logprobs)
        last = chunk
    _account(metrics, route, last.usage, t0, t_first)
    body = wire.completion_json(
        rid=rid, model=route.tier or route.requested, text="".join(parts),
        logprobs=lps if with_logprobs else None, finish_reason=last.finish_reason,
        usage=last.usage, rung=route.as_dict())
    return web.Response(body=body, content_type="application/json",
                        headers=_route_headers(route))


async def _stream_response(request: web.Request, stream: Any, *, rid: str, route: Route,
                           t0: float, metrics: Metrics, include_usage: bool,
                           with_logprobs: bool) -> web.StreamResponse:
    # Wait for the first chunk before sending headers, so that errors raised before any
    # text exists (bad request, full queue, every tier down) keep their HTTP status.
    it = stream.__aiter__()
    try:
        first: Chunk | None = await it.__anext__()
    except StopAsyncIteration:
        first = None
    t_first = time.perf_counter()
    created = int(time.time())
    model = route.tier or route.requested
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        **_route_headers(route)})
    await resp.prepare(request)
    await resp.write(wire.chunk_event(rid=rid, model=model, created=created, role=True))
    last = Chunk()
    try:
        chunk = first
        while chunk is not None:
            if chunk.text or (with_logprobs and chunk.logprobs) or chunk.finish_reason:
                await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                                  chunk=chunk, with_logprobs=with_logprobs))
            last = chunk
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                chunk = None
        if last.finish_reason is None:
            await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                              chunk=Chunk(finish_reason="stop")))
        if include_usage:
            await resp.write(wire.usage_event(rid=rid, model=model, created=created,
                                              usage=last.usage, rung=route.as_dict()))
        await resp.write(wire.DONE_EVENT)
        _account(metrics, route, last.usage, t0, t_first)
    except RungError as exc:
        # Headers are gone: report the error as a last event, as OpenAI does.
        metrics.requests.labels(route.tier or "none", exc.code or "error").inc()
        await resp.write(b"data: " + error_response(exc).body + b"\n\n")  # type: ignore[operator]
    except (ConnectionResetError, asyncio.CancelledError):
        metrics.requests.labels(route.tier or "none", "client_closed").inc()
        raise
    return resp


async def list_models(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    created = int(time.time())
    data = [{"id": config.alias, "object": "model", "created": created, "owned_by": "rung"}]
    data += [{"id": t.name, "object": "model", "created": created, "owned_by": "rung"}
             for t in config.tiers]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    tiers = {name: b.ready for name, b in gateway.backends.items()}
    ready = all(tiers.values())
    return web.json_response({"ready": ready, "tiers": tiers}, status=200 if ready else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own 404/405 pages become OpenAI-style JSON too."""
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return plain_error(exc.status, exc.reason, code=exc.reason.lower().replace(" ", "_"))


def create_app(config: Config, *, gateway: Gateway | None = None) -> web.Application:
    """Build the server. Models load in the background after start-up; /readyz says when."""
    app = web.Application(client_max_size=config.server.max_body_bytes,
                          middlewares=[_json_errors])
    gw = gateway or Gateway(config)

    def state() -> list[tuple[str, int, int, bool]]:
        return [(name, getattr(b, "queue_depth", 0), getattr(b, "in_flight", 0), b.ready)
                for name, b in gw.backends.items()]

    app[CONFIG] = config
    app[GATEWAY] = gw
    app[METRICS] = Metrics(state)
    app[_TASKS] = []

    async def on_startup(app: web.Application) -> None:
        async def load() -> None:
            try:
                await gw.start()
            except RungError as exc:
                log.error("a tier failed to start: %s", exc.message)
        app[_TASKS].append(asyncio.create_task(load()))

    async def on_cleanup(app: web.Application) -> None:
        for task in app[_TASKS]:
            task.cancel()
        await gw.aclose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


def serve(config: Config) -> None:
    """Run the server until interrupted (uvloop when available)."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a core dependency off Windows
        loop_factory = None
    app = create_app(config)
    host, port = config.server.host, config.server.port
    print(f"rung: serving {', '.join(t.name for t in config.tiers)} "
          f"(alias '{config.alias}') on http://{host}:{port}/v1", flush=True)
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    web.run_app(app, host=host, port=port, access_log=None, print=None,
                handler_cancellation=True, loop=loop)
