#!/usr/bin/env python3
"""Embeddings per second on the local all-MiniLM-L6-v2 tier, at batch 1 and batch 32:
the model alone (``MiniLM.embed``: 32 texts in one forward pass, and in passes of
``FORWARD_BATCH`` as the local tier runs them) and through the gateway
(``POST /v1/embeddings`` on loopback, base64 as the openai SDK asks, a trace stored per
request).

    .venv/bin/python bench/embeddings_bench.py            # 256 texts per row
    .venv/bin/python bench/embeddings_bench.py --texts 64 --threads 2

The texts are GSM8K questions from the shared RouteLLM data (about 60 tokens each). Each
row is the median of ``--rounds`` rounds, after one warm-up round; the gateway rows send
requests one after another, except the last, which keeps ``--clients`` requests of
batch 1 in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from rung.backends.embedding import FORWARD_BATCH
from rung.config import parse_config
from rung.routing.data import load_outcomes
from rung.routing.embed import MiniLM
from rung.server.app import create_app

DATA = Path(__file__).resolve().parents[2] / "shared/data/routellm"
MODEL = "all-minilm-l6-v2"


def _rate(n: int, one_round: Callable[[], float], rounds: int) -> float:
    one_round()  # warm-up: the model's first batches, lazy imports, connection pools
    return n / statistics.median(one_round() for _ in range(rounds))


def direct(model: MiniLM, texts: list[str], batch: int, rounds: int,
           per_pass: int = 32) -> float:
    def one_round() -> float:
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch):
            model.embed(texts[i:i + batch], batch_size=per_pass)
        return time.perf_counter() - t0
    return _rate(len(texts), one_round, rounds)


class Server:
    """rung on loopback in its own thread and event loop (the client keeps this one)."""

    def __init__(self, threads: int) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.config = parse_config({
            "store": {"url": f"sqlite:///{self._tmp.name}/traces.db"},
            # a chat tier nobody calls: the server loads no chat model
            "tiers": [{"name": "chat", "backend": {"type": "openai",
                                                   "base_url": "http://127.0.0.1:9/v1",
                                                   "model": "m"}}],
            "embeddings": {"threads": threads, "preload": True}})
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._runner: web.AppRunner | None = None
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_app(self.config), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1/embeddings"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._tmp.cleanup()


async def gateway(url: str, texts: list[str], batch: int, rounds: int,
                  clients: int = 1) -> float:
    async with aiohttp.ClientSession() as session:
        async def post(chunk: list[str]) -> None:
            async with session.post(url, json={"model": MODEL, "input": chunk,
                                               "encoding_format": "base64"}) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{r.status}: {await r.text()}")

        async def one_round() -> float:
            chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
            t0 = time.perf_counter()
            if clients == 1:
                for c in chunks:
                    await post(c)
            else:
                sem = asyncio.Semaphore(clients)

                async def limited(c: list[str]) -> None:
                    async with sem:
                        await post(c)
                await asyncio.gather(*(limited(c) for c in chunks))
            return time.perf_counter() - t0

        return await _arate(len(texts), one_round, rounds)


async def _arate(n: int, one_round: Callable[[], Awaitable[float]], rounds: int) -> float:
    await one_round()
    return n / statistics.median([await one_round() for _ in range(rounds)])


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--texts", type=int, default=256, help="texts embedded per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="embeddings.threads of the server")
    p.add_argument("--clients", type=int, default=4, help="requests in flight, last row")
    args = p.parse_args()
    texts = [o.prompt for o in load_outcomes(DATA, "gsm8k")[:args.texts]]
    model = MiniLM()
    tokens = model.embed_counted(texts)[1]
    print(f"{len(texts)} GSM8K questions, {tokens / len(texts):.0f} tokens each on average; "
          f"median of {args.rounds} rounds; server: embeddings.threads = {args.threads}")
    rows = [("MiniLM.embed", "1", direct(model, texts, 1, args.rounds)),
            ("MiniLM.embed, one forward pass", "32", direct(model, texts, 32, args.rounds)),
            (f"MiniLM.embed, {FORWARD_BATCH} texts per pass", "32",
             direct(model, texts, 32, args.rounds, per_pass=FORWARD_BATCH))]
    server = Server(args.threads)
    try:
        for batch, clients in ((1, 1), (32, 1), (1, args.clients)):
            rate = asyncio.run(gateway(server.url, texts, batch, args.rounds, clients))
            how = "POST /v1/embeddings" + (f", {clients} at once" if clients > 1 else "")
            rows.append((how, str(batch), rate))
    finally:
        server.stop()
    print(f"| {'path':36s} | batch | embeddings/s |")
    print(f"| {'-' * 36} | ----: | -----------: |")
    for how, batch, rate in rows:
        print(f"| {how:36s} | {batch:>5s} | {rate:12.1f} |")


if __name__ == "__main__":
    main()
