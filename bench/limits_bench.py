#!/usr/bin/env python3
"""Benchmark: what a key's limits add to a request, in one process vs shared in Postgres.

    .venv/bin/python bench/limits_bench.py --postgres postgresql://postgres@127.0.0.1:PORT/db
        [--rpm 100 1000 5000] [--callers 8] [--repeat 3]

Each request is what the server does for a key with limits: ``enter`` before it (check
and count) and ``charge`` after it (tokens and cost), measured from the event loop. The
key has the given requests-per-minute limit (every request is admitted: the window ends
holding ``rpm`` requests), a tokens-per-minute limit and a daily budget, so every check
runs. "sqlite" is the in-process limiter that a single server on a SQLite store uses;
"postgres" the shared one (``rung.auth.shared``) on a fresh database (dropped
afterwards). The last rows run three limiters at once, as three replicas would, with
``callers`` concurrent requests each: on one key (they queue on its row lock) and on a key
per caller. "the two statements alone" is Postgres's share: the same two calls on a plain
connection, without the hop to the limiter's thread. Each sequential row shows the best
of ``repeat`` runs (lowest median). ``bash .ci/postgres.sh`` starts a server.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rung.auth.access import Access
from rung.auth.keys import ApiKey, KeyStore, PostgresKeyStore
from rung.auth.limits import KeyLimits
from rung.auth.shared import SharedLimiter

Row = tuple[str, str, int, list[float], float]


async def one(lim: KeyLimits, key: ApiKey) -> float:
    t0 = time.perf_counter()
    await lim.enter(key)
    await lim.charge(key.id, tokens=120, cost=1e-5)
    return time.perf_counter() - t0


async def sequential(lim: KeyLimits, key: ApiKey, n: int) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    lat = [await one(lim, key) for _ in range(n)]
    return lat, time.perf_counter() - t0


async def concurrent(pairs: list[tuple[KeyLimits, ApiKey]], per_caller: int
                     ) -> tuple[list[float], float]:
    async def caller(lim: KeyLimits, key: ApiKey) -> list[float]:
        return [await one(lim, key) for _ in range(per_caller)]

    t0 = time.perf_counter()
    lats = await asyncio.gather(*(caller(lim, key) for lim, key in pairs))
    return [x for lat in lats for x in lat], time.perf_counter() - t0


def limits(rpm: int) -> dict[str, float]:
    return {"rpm": rpm, "tpm": 10**12, "daily_budget": 1e9}


def bench_sqlite(rpm: int, repeat: int) -> Row:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "rung.db"
        access = Access(db)
        store = KeyStore(db)
        try:
            for _ in range(repeat):
                key = store.create("bench", **limits(rpm))[0]  # type: ignore[arg-type]
                runs.append(asyncio.run(sequential(access.limiter, key, rpm)))
        finally:
            store.close()
            access.close()
    lat, took = min(runs, key=lambda run: statistics.median(run[0]))
    return ("sqlite, in process", f"{rpm}", 1, lat, took)


def statements(url: str, key: ApiKey, n: int) -> tuple[list[float], float]:
    """rung_admit and rung_charge on a plain connection: Postgres's share of a request."""
    from rung.store.postgres import connect

    conn = connect(url)
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        conn.execute("SELECT * FROM rung_admit(%s, NULL)", (key.id,)).fetchone()
        conn.execute("SELECT rung_charge(%s, %s, %s, NULL)", (key.id, 120, 1e-5))
        lat.append(time.perf_counter() - t)
    took = time.perf_counter() - t0
    conn.close()
    return lat, took


def bench_postgres(url: str, rpm: int, callers: int, repeat: int) -> list[Row]:
    keys = PostgresKeyStore(url)
    rows: list[Row] = []
    lims = [SharedLimiter(url, keys=lambda _: None) for _ in range(3)]
    try:
        warm = keys.create("warm-up", **limits(10**9))[0]  # type: ignore[arg-type]
        for lim in lims:  # connections opened, functions compiled, statements prepared
            asyncio.run(concurrent([(lim, warm)] * 8, 10))
        runs = []
        for _ in range(repeat):
            key = keys.create("bench", **limits(rpm))[0]  # type: ignore[arg-type]
            runs.append(asyncio.run(sequential(lims[0], key, rpm)))
        lat, took = min(runs, key=lambda run: statistics.median(run[0]))
        rows.append(("postgres, shared", f"{rpm}", 1, lat, took))
        runs = []
        for _ in range(repeat):
            key = keys.create("bench", **limits(rpm))[0]  # type: ignore[arg-type]
            runs.append(statements(url, key, rpm))
        lat, took = min(runs, key=lambda run: statistics.median(run[0]))
        rows.append(("postgres, the two statements alone", f"{rpm}", 1, lat, took))
        if rpm == 100:
            n = 3 * callers
            one_key = keys.create("one", **limits(10**9))[0]  # type: ignore[arg-type]
            per = max(1, 600 // n)
            lat, took = asyncio.run(concurrent([(lims[i % 3], one_key) for i in range(n)],
                                               per))
            rows.append(("postgres, 3 replicas, one key", f"{n * per}", n, lat, took))
            many = [keys.create(f"k{i}", **limits(10**9))[0]  # type: ignore[arg-type]
                    for i in range(n)]
            lat, took = asyncio.run(concurrent([(lims[i % 3], many[i]) for i in range(n)],
                                               per))
            rows.append(("postgres, 3 replicas, a key each", f"{per} each", n, lat, took))
    finally:
        for lim in lims:
            lim.close()
        keys.close()
    return rows


def fresh_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"rung_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="a URL whose user may create databases")
    ap.add_argument("--rpm", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--callers", type=int, default=8, help="concurrent requests per replica")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the one with the "
                    "lowest median is shown (the machine's other work only adds)")
    args = ap.parse_args()
    import psycopg

    print(f"enter + charge per request, from the event loop; {platform.python_version()}, "
          f"{platform.machine()}, Postgres on loopback\n")
    print("| limiter | requests in the window | concurrent | p50 ms | p99 ms | requests/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for rpm in args.rpm:
        name, url = fresh_database(args.postgres)
        try:
            rows = [bench_sqlite(rpm, args.repeat),
                    *bench_postgres(url, rpm, args.callers, args.repeat)]
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for label, window, conc, lat, took in rows:
            q = statistics.quantiles(lat, n=100)
            print(f"| {label} | {window} | {conc} | {q[49] * 1e3:.3f} | {q[98] * 1e3:.3f} | "
                  f"{len(lat) / took:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
