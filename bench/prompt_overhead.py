#!/usr/bin/env python3
"""Benchmark: what naming a registered prompt (``rung.prompt``) adds to a request, next
to the same request with the rendered messages sent by the client, driven by `hey`.

    .venv/bin/python bench/prompt_overhead.py           # 2,016 requests at c=32, 2 rounds
    .venv/bin/python bench/prompt_overhead.py --quick   # 512 requests at c=32, 2 rounds

One `rung serve` (one openai tier over the instant loopback upstream, traces into a
temp SQLite store holding the prompt) answers two bodies in interleaved rounds: chat with
the messages written out, and chat naming the prompt's production label with its
variables (the same messages once rendered). The server's CPU time per request is read
from /proc around each round; then `hey -c 1` gives p50 and p99 latency. Then the
rendering step alone (``apply_prompt`` on a warm cache) is timed in-process. Every
response must be a 200; all processes stop on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from overhead_bench import (
    CLIENT,
    FULL,
    QUICK,
    Procs,
    Size,
    client_version,
    hey,
    settled_cpu_s,
)
from serve_bench import free_port

from rung.prompts.model import new_version
from rung.store.prompts import PromptStore

PROMPT = {"messages": [
    {"role": "system", "content": "You solve grade-school maths. {{style}} End with a line "
                                  "'The answer is N'."},
    {"role": "user", "content": "Natalia sold clips to 48 of her friends in April."},
    {"role": "assistant", "content": "In May she sold 24. The answer is 72"},
    {"role": "user", "content": "{{question}}"}],
    "variables": {"style": "Show your steps."}, "config": {"max_tokens": 16}}
QUESTION = "Weng earns $12 an hour for babysitting. She did 50 minutes. How much?"


def bodies() -> dict[str, dict[str, object]]:
    v = new_version("gsm", PROMPT)
    from rung.prompts.model import render

    rendered = render(v, {"question": QUESTION})
    return {
        "messages written out": {"model": "upstream", "max_tokens": 16, "messages": rendered},
        "rung.prompt = gsm": {"model": "upstream", "messages": [],
                              "rung": {"prompt": "gsm", "variables": {"question": QUESTION}}},
    }


def render_alone(db: Path, n: int = 20000) -> tuple[float, float]:
    """p50 and p99 microseconds of apply_prompt on a warm cache (label within its TTL)."""
    from rung.prompts.apply import apply_prompt
    from rung.prompts.cache import PromptCache
    from rung.types import ChatRequest

    async def go() -> list[float]:
        cache = PromptCache(lambda: PromptStore(db), label_ttl_s=3600)
        req = ChatRequest(messages=())
        await apply_prompt(cache, "gsm", {"question": QUESTION}, req, pin=None,
                           thresholds=None, who=None)
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await apply_prompt(cache, "gsm", {"question": QUESTION}, req, pin=None,
                               thresholds=None, who=None)
            out.append((time.perf_counter() - t0) * 1e6)
        cache.close()
        return out
    times = sorted(asyncio.run(go()))
    return statistics.median(times), times[int(0.99 * len(times))]


def run(size: Size) -> None:
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="rung-prompts-"))
    up_port, rung_port = free_port(), free_port()
    (tmp / "rung.toml").write_text(f"""
[[tiers]]
name = "upstream"
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
""")
    db = tmp / "traces.db"
    store = PromptStore(db)
    store.push(new_version("gsm", PROMPT), label="production")
    store.close()
    files: dict[str, Path] = {}
    for i, (name, body) in enumerate(bodies().items()):
        files[name] = tmp / f"body{i}.json"
        files[name].write_bytes(json.dumps(body).encode())
    url = f"http://127.0.0.1:{rung_port}/v1/chat/completions"
    procs = Procs(tmp)
    try:
        procs.spawn("upstream", [sys.executable, "-m", "rung.devtools.upstream",
                                 "--port", str(up_port)], up_port)
        server = procs.spawn(
            "rung", [sys.executable, "-m", "rung.cli.main", "serve", "--config",
                     str(tmp / "rung.toml"), "--port", str(rung_port),
                     "--store", f"sqlite:///{db}"], f"http://127.0.0.1:{rung_port}/readyz")
        for body in files.values():
            hey(url, body, n=size.warmup, c=size.conc)
        rows: list[tuple[str, float, float]] = []  # name, rps, cpu ms/req
        for _ in range(size.rounds):
            for name, body in files.items():
                before = settled_cpu_s(server.pid)
                res = hey(url, body, n=size.requests, c=size.conc)
                rows.append((name, res.rps,
                             (settled_cpu_s(server.pid) - before) * 1000 / res.requests))
        c1: dict[str, list[tuple[float, float]]] = {}
        for _ in range(size.rounds):
            for name, body in files.items():
                res = hey(url, body, n=size.c1_requests, c=1)
                c1.setdefault(name, []).append((res.p50_ms, res.p99_ms))
    finally:
        procs.stop()
    p50_us, p99_us = render_alone(db)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared by client, "
          f"upstream and server; load average {load:.1f} at the start), Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
          f"client: {client_version()}\n")
    print(f"| request | p50 ms at c=1 | p99 ms at c=1 | req/s at c={size.conc} | "
          "server CPU ms/req |")
    print("|---|---|---|---|---|")
    for name in files:
        lat = c1[name]
        rps = [r for n, r, _ in rows if n == name]
        cpu = [c for n, _, c in rows if n == name]
        print(f"| {name} | {', '.join(f'{p:.2f}' for p, _ in lat)} | "
              f"{', '.join(f'{p:.2f}' for _, p in lat)} | "
              f"{', '.join(f'{r:.0f}' for r in rps)} | {', '.join(f'{c:.2f}' for c in cpu)} |")
    print(f"\nRendering alone (apply_prompt, label cached; 20,000 calls in-process): "
          f"p50 {p50_us:.1f} us, p99 {p99_us:.1f} us.")
    print(f"\nValues by round ({size.rounds} rounds, interleaved): {CLIENT} -c 1 -n "
          f"{size.c1_requests} for latency, {size.requests} requests at c={size.conc} for "
          f"throughput and CPU, after {size.warmup} warm-up requests each; non-streaming, "
          "pinned to one openai tier over an instant loopback upstream.")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="512 requests a round, 100 at c=1")
    args = p.parse_args()
    run(QUICK if args.quick else FULL)


if __name__ == "__main__":
    main()
