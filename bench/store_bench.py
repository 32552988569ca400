#!/usr/bin/env python3
"""Benchmark: trace writes per second, SQLite vs Postgres, written concurrently.

    .venv/bin/python bench/store_bench.py --postgres postgresql://postgres@127.0.0.1:PORT/db
        [--n 5000] [--concurrency 64 5000] [--repeat 3]

Each run writes ``n`` realistic traces (a short conversation and a two-attempt route) with
at most ``concurrency`` writes in flight, the way the server's requests await theirs, into
a fresh store: a new SQLite file, a new Postgres database (dropped afterwards). Prints a
Markdown table of the best of ``repeat`` runs. ``bash .ci/postgres.sh`` starts a server.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rung.store.base import TraceStore
from rung.store.trace import Trace


def trace(i: int) -> Trace:
    return Trace(id=f"chatcmpl-{uuid.uuid4().hex}", time=1_700_000_000 + i * 0.001,
                 model="rung", tier="small" if i % 5 else "big", escalated=i % 5 == 0,
                 input_tokens=40 + i % 7, output_tokens=120, latency_ms=250.0, ttft_ms=30.0,
                 cost=1.2e-5, score=0.31, prompt_hash="0" * 32,
                 messages=[{"role": "system", "content": "You are terse."},
                           {"role": "user", "content": f"question {i}: " + "word " * 40}],
                 response="answer " * 60,
                 route={"reason": "score", "score": 0.31, "attempts": [
                     {"tier": "small", "outcome": "rejected", "verdicts": [
                         {"name": "json", "score": 0.0}]},
                     {"tier": "big", "outcome": "answered"}]})


async def write_all(store: TraceStore, traces: list[Trace], concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(t: Trace) -> None:
        async with sem:
            await store.write(t)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(t) for t in traces))
    return time.perf_counter() - t0


def run(open_store: Callable[[], tuple[TraceStore, Callable[[], None]]], n: int,
        concurrency: int) -> float:
    traces = [trace(i) for i in range(n)]
    store, cleanup = open_store()
    try:
        elapsed = asyncio.run(write_all(store, traces, concurrency))
        assert store.count() == n, store.count()
    finally:
        store.close()
        cleanup()
    return n / elapsed


def sqlite_opener() -> tuple[TraceStore, Callable[[], None]]:
    from rung.store.sqlite import SqliteStore

    tmp = tempfile.TemporaryDirectory()
    return SqliteStore(Path(tmp.name) / "traces.db"), tmp.cleanup


def postgres_opener(admin_url: str) -> Callable[[], tuple[TraceStore, Callable[[], None]]]:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from rung.store.postgres import PostgresStore

    def opener() -> tuple[TraceStore, Callable[[], None]]:
        name = f"rung_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        return PostgresStore(url), drop

    return opener


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="a URL whose user may create databases")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[64, 5000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    stores = {"sqlite (WAL, synchronous=NORMAL)": sqlite_opener,
              "postgres (psycopg 3, loopback)": postgres_opener(args.postgres)}
    print(f"{args.n} traces per run, best of {args.repeat}; {platform.python_version()}, "
          f"{platform.machine()}\n")
    print("| store | in flight | writes/s |")
    print("|---|---:|---:|")
    for conc in args.concurrency:
        for name, opener in stores.items():
            best = max(run(opener, args.n, conc) for _ in range(args.repeat))
            print(f"| {name} | {conc} | {best:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
