"""The aiohttp application: ``create_app(config)`` builds it, ``serve`` runs it."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rung.auth.access import Access, auth_required
from rung.backends.base import Backend
from rung.config import Config
from rung.drift.judging import SampledJudge
from rung.errors import ConfigError, RungError
from rung.gateway import Gateway
from rung.metrics import Metrics
from rung.server.banner import banner
from rung.server.chat import chat_completions
from rung.server.dashboard import add_dashboard_routes
from rung.server.embeddings import EMBEDDINGS, add_embeddings
from rung.server.errors import plain_error
from rung.server.feedback import post_feedback
from rung.server.prompts import add_prompt_routes
from rung.server.responses import add_routes as add_responses_routes
from rung.server.shadow import Shadow
from rung.server.sinks import (
    JudgeSink,
    LimitsSink,
    MetricsSink,
    ShadowSink,
    Sink,
    StoreSink,
    TelemetrySink,
)
from rung.server.state import (
    ACCESS,
    CONFIG,
    DRIFT,
    GATEWAY,
    JUDGE,
    METRICS,
    SINKS,
    STORE,
    gate,
)
from rung.store.base import TraceStore, open_store
from rung.telemetry import Telemetry

log = logging.getLogger("rung.server")

TELEMETRY: web.AppKey[Telemetry | None] = web.AppKey("telemetry")
_TASKS = web.AppKey("tasks", list)


async def list_models(request: web.Request) -> web.Response:
    if (denied := gate(request)) is not None:
        return denied
    config = request.app[CONFIG]
    created = int(time.time())
    data = [{"id": config.alias, "object": "model", "created": created, "owned_by": "rung"}]
    data += [{"id": t.name, "object": "model", "created": created, "owned_by": "rung"}
             for t in config.tiers]
    data += [{"id": name, "object": "model", "created": created, "owned_by": "rung"}
             for name in request.app[EMBEDDINGS].tiers]
    return web.json_response({"object": "list", "data": data})


async def openapi_json(request: web.Request) -> web.Response:
    from rung.server.openapi import openapi

    return web.json_response(openapi())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    tiers = {name: b.ready for name, b in gateway.backends.items()}
    ready = all(tiers.values())
    return web.json_response({"ready": ready, "tiers": tiers}, status=200 if ready else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    if (denied := gate(request, admin=True)) is not None:
        return denied
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


def create_app(config: Config, *, gateway: Gateway | None = None,
               store: TraceStore | None = None,
               telemetry: Telemetry | None = None,
               announce: Callable[[str], None] | None = None) -> web.Application:
    """Build the server. Models load in the background after start-up; /readyz says when,
    and ``announce`` (``rung serve``'s console) is told as each tier loads.
    The trace store opens here (its schema migrates) and closes on clean-up."""
    app = web.Application(client_max_size=config.server.max_body_bytes,
                          middlewares=[_json_errors])
    gw = gateway or Gateway(config)

    def state() -> list[tuple[str, int, int, bool]]:
        return [(name, getattr(b, "queue_depth", 0), getattr(b, "in_flight", 0), b.ready)
                for name, b in gw.backends.items()]

    app[CONFIG] = config
    app[GATEWAY] = gw
    app[METRICS] = Metrics(state)
    app[STORE] = store if store is not None else open_store(config.store.url)
    app[ACCESS] = None
    app[TELEMETRY] = telemetry if telemetry is not None else Telemetry.from_config(config)
    app[JUDGE] = None
    if config.drift.judge_tier is not None and config.drift.judge_sample > 0:
        app[JUDGE] = SampledJudge(gw.cascade, app[STORE], tier=config.drift.judge_tier,
                                  rate=config.drift.judge_sample)
    if auth_required(config.server.auth, config.server.host):
        # Keys live beside the traces: in the SQLite file, or in Postgres for replicas.
        db = getattr(app[STORE], "path", None)
        app[ACCESS] = Access(db if db is not None else config.store.url)
    app[_TASKS] = []
    shadow = Shadow(config, gw.cascade, app[STORE], app[METRICS]) \
        if config.routing.shadow is not None else None
    app[SINKS] = _sinks(app) + ([ShadowSink(shadow)] if shadow is not None else [])

    monitor = None
    if config.drift.enabled:
        from rung.drift.monitor import DriftMonitor

        monitor = DriftMonitor(app[STORE], config.drift, app[METRICS])
        app[DRIFT] = monitor.status

    async def on_startup(app: web.Application) -> None:
        t0 = time.perf_counter()

        async def load(name: str, backend: Backend) -> None:
            try:
                await backend.start()
            except RungError as exc:
                log.error("tier %s failed to start: %s", name, exc.message)
                if announce is not None:
                    announce(f"rung: tier {name} failed to load: {exc.message}")
                return
            if announce is not None:
                announce(f"rung: tier {name} loaded ({time.perf_counter() - t0:.1f} s)")
        app[_TASKS].extend(asyncio.create_task(load(name, b))
                           for name, b in gw.backends.items())
        if monitor is not None:
            app[_TASKS].append(asyncio.create_task(monitor.run()))

    async def on_cleanup(app: web.Application) -> None:
        for task in app[_TASKS]:
            task.cancel()
        judge = app[JUDGE]
        if judge is not None:
            await judge.drain()
        if shadow is not None:
            await shadow.close()
        await gw.aclose()
        await asyncio.to_thread(app[STORE].close)
        access = app[ACCESS]
        if access is not None:
            access.close()
        tel = app[TELEMETRY]
        if tel is not None:
            await asyncio.to_thread(tel.shutdown)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/feedback", post_feedback)
    add_responses_routes(app)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    add_dashboard_routes(app)
    add_embeddings(app)
    add_prompt_routes(app)
    return app


def _sinks(app: web.Application) -> list[Sink]:
    """What every finished request is handed to, in order (the trace is durable before
    telemetry and the judge see it)."""
    config = app[CONFIG]
    sinks: list[Sink] = [MetricsSink(app[METRICS], top_cost=config.ladder_tiers[-1].cost)]
    access = app[ACCESS]
    if access is not None:
        sinks.append(LimitsSink(access.limiter))
    sinks.append(StoreSink(app[STORE]))
    telemetry = app[TELEMETRY]
    if telemetry is not None:
        sinks.append(TelemetrySink(telemetry))
    judge = app[JUDGE]
    if judge is not None:
        sinks.append(JudgeSink(judge))
    return sinks


def serve(config: Config) -> None:
    """Run the server until interrupted (uvloop when available)."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a core dependency off Windows
        loop_factory = None
    app = create_app(config, announce=lambda line: print(line, flush=True))
    # Requests make no cyclic garbage worth collecting every 700 allocations (the
    # default): a collection every 10,000 cost 5% less CPU per request, measured with
    # bench/overhead_bench.py; what exists at start-up is frozen out of every collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    host, port = config.server.host, config.server.port
    gw = app[GATEWAY]

    def say_banner(_: object) -> None:
        loaded = {name: b.ready for name, b in gw.backends.items()}
        print("\n".join(banner(config, loaded)), flush=True)
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        # run_app calls `print` once the socket is bound: the banner is then true.
        web.run_app(app, host=host, port=port, access_log=None,
                    print=say_banner,
                    handler_cancellation=True, loop=loop,
                    shutdown_timeout=config.server.shutdown_timeout_s)
    except OSError as exc:  # the address is taken, or not ours to bind
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
