#!/usr/bin/env python3
"""Which of rung's modules one request runs code in, from the HTTP handler to the backend
and back: a real server and an instant upstream on loopback, one request profiled.

    .venv/bin/python bench/request_modules.py             # through the alias (routed, verified)
    .venv/bin/python bench/request_modules.py --model big # a tier named by the request

Prints the count and the modules, the way back (verifiers, sinks, store, metrics)
included.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile

import aiohttp
from aiohttp import web

from rung.config import parse_config
from rung.devtools.upstream import create_upstream_app
from rung.server.app import create_app

ROOT_MARK = "/rung/"


async def _profile(model: str) -> pstats.Stats:
    up = web.AppRunner(create_upstream_app())
    await up.setup()
    up_site = web.TCPSite(up, "127.0.0.1", 0)
    await up_site.start()
    up_port = up_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{up_port}/v1"
    tmp = tempfile.mkdtemp()
    cfg = parse_config({
        "store": {"url": f"sqlite:///{tmp}/t.db"}, "routing": {"thresholds": [0.5]},
        "tiers": [{"name": "small", "backend": {"type": "openai", "base_url": base, "model": "m"},
                   "verifiers": [{"type": "json"}]},
                  {"name": "big", "backend": {"type": "openai", "base_url": base, "model": "m"}}]})
    runner = web.AppRunner(create_app(cfg))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    prof = cProfile.Profile()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(url, json=body) as r:  # warm-up: lazy imports, pools
                await r.read()
            prof.enable()
            async with client.post(url, json=body) as r:
                await r.read()
            prof.disable()
    finally:
        await runner.cleanup()
        await up.cleanup()
    return pstats.Stats(prof)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--model", default="rung", help="the alias (default) or a tier: small, big")
    args = p.parse_args()
    stats = asyncio.run(_profile(args.model))
    mods = sorted({f[f.rindex(ROOT_MARK) + 1:] for (f, _, _) in stats.stats  # type: ignore[attr-defined]
                   if ROOT_MARK in f and "devtools" not in f})
    print(f"model {args.model!r}: code ran in {len(mods)} rung modules")
    for m in mods:
        print(f"  {m}")


if __name__ == "__main__":
    main()
