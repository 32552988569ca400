#!/usr/bin/env python3
"""Benchmark: one local tier answering N concurrent requests one at a time (parallel = 1)
vs decoded together (continuous batching, parallel = P), side by side in one run.

    .venv/bin/python bench/batch_bench.py                          # embedded SmolLM2
    .venv/bin/python bench/batch_bench.py --model qwen2.5-coder-1.5b --parallel 4,16

Same prompts, greedy, same token budget; each request's wall latency and the total
throughput are printed as a Markdown table. In-process (the backend, no HTTP), bounded
and self-stopping.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.types import ChatRequest, Message

TOPICS = ["a lighthouse", "a mountain village", "a river", "a desert town", "a library",
          "an old clock", "a train station", "a garden", "a shipwreck", "a bakery",
          "a snowstorm", "a market", "a bridge", "a forest fire", "a violin", "a comet"]


async def one(backend: LlamaBackend, i: int, max_tokens: int) -> tuple[int, float]:
    req = ChatRequest(messages=(Message("user", f"Write a long story about "
                                         f"{TOPICS[i % len(TOPICS)]}."),),
                      max_tokens=max_tokens, temperature=0.0)
    t0 = time.perf_counter()
    n = 0
    async for c in backend.stream(req):
        if c.usage is not None:
            n = c.usage.completion_tokens
    return n, time.perf_counter() - t0


async def measure(model: str, parallel: int, n: int, max_tokens: int) -> dict[str, float]:
    b = LlamaBackend("bench", LlamaBackendConfig(model=model, parallel=parallel),
                     catalog=CatalogConfig())
    await b.start()
    try:
        await one(b, 0, 8)  # warm-up
        t0 = time.perf_counter()
        got = await asyncio.gather(*(one(b, i, max_tokens) for i in range(n)))
        wall = time.perf_counter() - t0
    finally:
        await b.aclose()
    toks = sum(g[0] for g in got)
    lat = [g[1] for g in got]
    return {"wall": wall, "tokens": toks, "tok_s": toks / wall,
            "p50": statistics.median(lat), "max": max(lat)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--parallel", default="4,16", help="comma-separated batch sizes")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    sizes = [1] + [int(x) for x in a.parallel.split(",") if x and int(x) > 1]
    rows = [(p, await measure(a.model, p, a.requests, a.max_tokens)) for p in sizes]
    base = rows[0][1]["tok_s"]
    print(f"\n{a.model}: {a.requests} concurrent requests x {a.max_tokens} tokens, greedy; "
          f"{platform.machine()}, {platform.python_version()}\n")
    print("| parallel | tokens | wall s | tok/s | vs one at a time | latency p50 s | "
          "latency max s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for p, r in rows:
        print(f"| {p} | {r['tokens']:.0f} | {r['wall']:.1f} | {r['tok_s']:.1f} | "
              f"{r['tok_s'] / base:.2f}x | {r['p50']:.1f} | {r['max']:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
