"""The gateway's overhead with shadow comparisons on (share 0.1) next to off.

    .venv/bin/python bench/shadow_bench.py [--requests 3000] [--rounds 2]

An instant upstream (a process, `python -m rung.devtools.upstream`) serves two tiers,
small and big; two `rung serve` processes route every request to small, one without
`routing.shadow` and one with `routing.shadow = {share = 0.1}` (a tenth of the answers is
answered again by big in the background). Rounds alternate off / on; each round sends
``--requests`` requests one at a time (latency over the upstream alone) and then as many
at concurrency 32 (throughput). Printed: p50 and p99 at c=1, req/s at c=32, and each
server's CPU seconds per request (from /proc), per round and side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import free_port, pct, start

BODY = {"model": "rung", "messages": [{"role": "user", "content": "hello"}]}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_by_one(url: str, n: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t = time.perf_counter()
            async with s.post(f"{url}/v1/chat/completions", json=BODY) as r:
                await r.read()
                assert r.status == 200
            out.append((time.perf_counter() - t) * 1000)
    return out


async def concurrent(url: str, n: int, c: int = 32) -> float:
    left = [n]

    async def worker(s: aiohttp.ClientSession) -> None:
        while left[0] > 0:
            left[0] -= 1
            async with s.post(f"{url}/v1/chat/completions", json=BODY) as r:
                await r.read()
                assert r.status == 200

    t = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        await asyncio.gather(*(worker(s) for _ in range(c)))
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    up_port = free_port()
    upstream = start([sys.executable, "-m", "rung.devtools.upstream", "--port", str(up_port)],
                     f"http://127.0.0.1:{up_port}/v1/models")
    servers: dict[str, tuple[str, int]] = {}
    procs = [upstream]
    with tempfile.TemporaryDirectory(prefix="rung-shadow-bench-") as tmp:
        try:
            for name, shadow in (("off", ""), ("on (share 0.1)", "[routing.shadow]\nshare = 0.1\n")):
                cfg = Path(tmp) / f"{len(servers)}.toml"
                tier = (f'backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", '
                        'model = "m" }\n')
                cfg.write_text(f"{shadow}[[tiers]]\nname = \"small\"\n{tier}"
                               f"[[tiers]]\nname = \"big\"\n{tier}")
                port = free_port()
                proc = start([sys.executable, "-m", "rung.cli.main", "serve", "--config",
                              str(cfg), "--port", str(port), "--store",
                              f"sqlite:///{tmp}/{len(servers)}.db"],
                             f"http://127.0.0.1:{port}/readyz")
                procs.append(proc)
                servers[name] = (f"http://127.0.0.1:{port}", proc.pid)
            rows = []
            for rnd in range(args.rounds):
                for name, (url, pid) in servers.items():
                    c0 = cpu_s(pid)
                    lat = asyncio.run(one_by_one(url, args.requests))
                    rps = asyncio.run(concurrent(url, args.requests))
                    per = (cpu_s(pid) - c0) / (2 * args.requests) * 1000
                    rows.append((rnd + 1, name, pct(lat, 0.5), pct(lat, 0.99), rps, per))
            print("| round | shadow | p50 ms (c=1) | p99 ms (c=1) | req/s (c=32) | "
                  "CPU ms/req |")
            print("|---|---|---|---|---|---|")
            for rnd, name, p50, p99, rps, per in rows:
                print(f"| {rnd} | {name} | {p50:.2f} | {p99:.2f} | {rps:.0f} | {per:.2f} |")
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
