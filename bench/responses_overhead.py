#!/usr/bin/env python3
"""Benchmark: the gateway's cost of ``POST /v1/responses`` next to
``POST /v1/chat/completions`` for the same question and the same upstream, side by side
in one run, driven by `hey`.

    .venv/bin/python bench/responses_overhead.py           # 2,016 requests at c=32, 2 rounds
    .venv/bin/python bench/responses_overhead.py --quick   # 512 requests at c=32, 2 rounds

One `rung serve` (one openai tier over the instant loopback upstream, traces into a
temp SQLite store) answers three bodies in interleaved rounds: chat completions, the
Responses API (which also keeps each response for ``previous_response_id``: one more
SQLite write per request) and the Responses API with ``store: false``. The server's CPU
time (from /proc) is read before and after each round; then `hey -c 1` gives the p50
latency each adds over the upstream alone. Every response must be a 200; all processes
stop on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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

BODIES = {
    "/v1/chat/completions": ("chat/completions", {
        "model": "upstream", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Say hello."}]}),
    "/v1/responses": ("responses", {"model": "upstream", "max_output_tokens": 16,
                                    "input": "Say hello."}),
    "/v1/responses store=false": ("responses", {"model": "upstream", "max_output_tokens": 16,
                                                "input": "Say hello.", "store": False}),
}


def run(size: Size) -> None:
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="rung-responses-"))
    up_port, rung_port = free_port(), free_port()
    (tmp / "rung.toml").write_text(f"""
[[tiers]]
name = "upstream"
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
""")
    db = tmp / "traces.db"
    bodies: dict[str, tuple[str, Path]] = {}
    for i, (name, (path, body)) in enumerate(BODIES.items()):
        f = tmp / f"body{i}.json"
        f.write_bytes(json.dumps(body).encode())
        bodies[name] = (f"http://127.0.0.1:{rung_port}/v1/{path}", f)
    procs = Procs(tmp)
    try:
        procs.spawn("upstream", [sys.executable, "-m", "rung.devtools.upstream",
                                 "--port", str(up_port)], up_port)
        server = procs.spawn(
            "rung", [sys.executable, "-m", "rung.cli.main", "serve", "--config",
                     str(tmp / "rung.toml"), "--port", str(rung_port),
                     "--store", f"sqlite:///{db}"], f"http://127.0.0.1:{rung_port}/readyz")
        for url, body in bodies.values():
            hey(url, body, n=size.warmup, c=size.conc)
        rows: list[tuple[str, float, float, float, float]] = []  # name, rps, p50, p99, cpu
        for _ in range(size.rounds):
            for name, (url, body) in bodies.items():
                before = settled_cpu_s(server.pid)
                res = hey(url, body, n=size.requests, c=size.conc)
                cpu = (settled_cpu_s(server.pid) - before) * 1000 / res.requests
                rows.append((name, res.rps, res.p50_ms, res.p99_ms, cpu))
        up_body = tmp / "up.json"
        up_body.write_bytes(json.dumps(BODIES["/v1/chat/completions"][1]).encode())
        c1: dict[str, list[float]] = {}
        for _ in range(size.rounds):
            c1.setdefault("upstream alone", []).append(hey(
                f"http://127.0.0.1:{up_port}/v1/chat/completions", up_body,
                n=size.c1_requests, c=1).p50_ms)
            for name, (url, body) in bodies.items():
                c1.setdefault(name, []).append(hey(url, body, n=size.c1_requests, c=1).p50_ms)
        with closing(sqlite3.connect(db)) as con:
            traces = int(con.execute("SELECT count(*) FROM traces").fetchone()[0])
            kept = int(con.execute("SELECT count(*) FROM responses").fetchone()[0])
    finally:
        procs.stop()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared by client, "
          f"upstream and server; load average {load:.1f} at the start), Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
          f"client: {client_version()}\n")
    print("| endpoint | requests | req/s | CPU ms/req | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, rps, p50, p99, cpu in rows:
        print(f"| {name} | {size.requests} | {rps:.0f} | {cpu:.2f} | {p50:.1f} | {p99:.1f} |")

    def mean_cpu(name: str) -> float:
        mine = [cpu for n, *_, cpu in rows if n == name]
        return sum(mine) / len(mine)

    chat = mean_cpu("/v1/chat/completions")
    for name in list(BODIES)[1:]:
        print(f"| **{name} / chat CPU** | | | **{mean_cpu(name) / chat:.2f}** | | |")
    print(f"\nAdded p50 latency at c=1 over the upstream alone ({CLIENT} -c 1 -n "
          f"{size.c1_requests}, {size.rounds} rounds):\n")
    print("| path | p50 ms by round | added p50 ms by round |")
    print("|---|---|---|")
    for name, p50s in c1.items():
        added = [p - u for p, u in zip(p50s, c1["upstream alone"], strict=True)]
        print(f"| {name} | {', '.join(f'{p:.1f}' for p in p50s)} | "
              f"{'' if name == 'upstream alone' else ', '.join(f'{a:.1f}' for a in added)} |")
    print(f"\n{size.rounds} rounds of {size.requests} requests at c={size.conc} per endpoint, "
          f"interleaved, after {size.warmup} warm-up requests each; non-streaming, pinned "
          f"to one openai tier over an instant loopback upstream. rung stored {traces} "
          f"traces and kept {kept} responses.")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="512 requests a round, 100 at c=1")
    args = p.parse_args()
    run(QUICK if args.quick else FULL)


if __name__ == "__main__":
    main()
