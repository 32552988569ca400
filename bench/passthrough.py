#!/usr/bin/env python3
"""The minimal reference for bench/overhead_bench.py: an aiohttp server that forwards
``POST /v1/chat/completions`` to one upstream through one shared ClientSession and
answers with the upstream's JSON, untouched. It runs like rung serve does (uvloop, no
access log), so the difference between the two is rung's own request path.

    python bench/passthrough.py --port 9001 --upstream http://127.0.0.1:9000/v1/chat/completions
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
_HEADERS = {"Content-Type": "application/json"}


async def _chat(request: web.Request) -> web.Response:
    body = await request.read()
    async with request.app[SESSION].post(request.app[UPSTREAM], data=body,
                                         headers=_HEADERS) as r:
        return web.Response(status=r.status, body=await r.read(),
                            content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream

    async def session(app: web.Application) -> AsyncIterator[None]:
        # the same pool size as rung's openai backend (max_connections = 256)
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/healthz", _healthz)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="the upstream's chat completions URL")
    args = p.parse_args()
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(create_app(args.upstream), host="127.0.0.1", port=args.port, access_log=None,
                print=None, handler_cancellation=True, loop=loop)


if __name__ == "__main__":
    main()
