#!/usr/bin/env python3
"""Load and soak: rung serve (a process) in front of an instant upstream (a process),
driven by a raw keep-alive HTTP client (this process). Every response is checked, and
afterwards every 200 must have its trace.

    .venv/bin/python bench/load_bench.py            # 2,000 at c=64, soak 10,000
    .venv/bin/python bench/load_bench.py --quick    # 500 at c=64, soak 2,000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import ROOT, RUNG, free_port, pct, rss_mb, start


async def _conn(port: int, n: int, lat: list[float], ids: list[str]) -> None:
    body = json.dumps({"model": "upstream", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
           f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    for _ in range(n):
        t = time.perf_counter()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        i = head.lower().find(b"content-length:")
        data = await reader.readexactly(int(head[i + 15: head.find(b"\r\n", i)]))
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"load: got {head[:40]!r} {data[:200]!r}")
        lat.append(time.perf_counter() - t)
        ids.append(json.loads(data)["id"])
    writer.close()


async def load(port: int, total: int, conc: int) -> tuple[list[float], list[str], float]:
    lat: list[float] = []
    ids: list[str] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_conn(port, total // conc, lat, ids) for _ in range(conc)))
    return lat, ids, len(lat) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    n_load, n_soak = (512, 2048) if args.quick else (2048, 10240)
    up_port, port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "traces.db"
    (tmp / "c.toml").write_text(f"""
[[tiers]]
name = "upstream"
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
cost = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}
""")
    upstream = subprocess.Popen([sys.executable, "-m", "rung.devtools.upstream", "--port",
                                 str(up_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ))
    gw = start([*RUNG, "serve", "--config", str(tmp / "c.toml"), "--port", str(port),
                "--store", f"sqlite:///{db}"], f"http://127.0.0.1:{port}/readyz")
    try:
        import uvloop

        lat, ids, rps = uvloop.run(load(port, n_load, 64))
        rss0 = rss_mb(gw.pid)[0]
        soak_lat, soak_ids, soak_rps = uvloop.run(load(port, n_soak, 16))
        rss1 = rss_mb(gw.pid)[0]
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        upstream.terminate()
        upstream.wait(timeout=30)
    stored = {r[0] for r in sqlite3.connect(db).execute("SELECT id FROM traces")}
    lost = len(set(ids + soak_ids) - stored)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| run | requests | concurrency | errors | lost traces | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| load | {len(lat)} | 64 | 0 | {lost} | {rps:.0f} | {pct(lat, .5) * 1000:.2f} | "
          f"{pct(lat, .99) * 1000:.2f} |")
    print(f"| soak | {len(soak_lat)} | 16 | 0 | {lost} | {soak_rps:.0f} | "
          f"{pct(soak_lat, .5) * 1000:.2f} | {pct(soak_lat, .99) * 1000:.2f} |")
    print(f"\nrung RSS after the load run {rss0:.1f} MB, after the soak {rss1:.1f} MB "
          f"({(rss1 / rss0 - 1) * 100:+.1f}%); traces stored: {len(stored)}")


if __name__ == "__main__":
    main()
