#!/usr/bin/env python3
"""Benchmark: the embedded model direct vs through `rung serve`, and the gateway's
added latency and throughput in front of an instant OpenAI-compatible upstream.

    .venv/bin/python bench/serve_bench.py            # full size (a few minutes)
    .venv/bin/python bench/serve_bench.py --quick    # reduced size

Everything runs on loopback, is measured side by side in one run, and stops by itself.
Prints Markdown tables (the README's come from here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
RUNG = [sys.executable, "-m", "rung.cli.main"]
PROMPTS = [
    ("Request {i}. Write a long story about a lighthouse keeper who finds a message in a "
     "bottle. Describe the sea, the weather, the keeper's daily routine and the mystery."),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    cur = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def start(cmd: list[str], ready_url: str, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.monotonic() + timeout
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"bench: {cmd} did not become ready")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- part 1: the model, direct vs through the server -------------------------------------
class Direct:
    """The embedded model called straight through llama-cpp-python, as rung loads it."""

    def __init__(self) -> None:
        from rung.backends.llama import _chat_formatter, _quiet_openmp

        _quiet_openmp()  # the same OpenMP wait policy as rung's own backend
        from llama_cpp import Llama

        from rung.catalog import resolve
        from rung.config import CatalogConfig

        path = resolve("smollm2-135m", catalog=CatalogConfig())
        self.llm = Llama(model_path=str(path), n_ctx=2048, n_threads=2, n_threads_batch=2,
                         verbose=False)
        self.fmt = _chat_formatter(self.llm)

    def run(self, i: str, max_tokens: int) -> dict[str, float]:
        prompt = self.fmt(messages=[{"role": "user", "content": PROMPTS[0].format(i=i)}])
        toks = self.llm.tokenize(prompt.prompt.encode(), add_bos=not prompt.added_special,
                                 special=True)
        t0 = time.perf_counter()
        first = last = 0.0
        n = 0
        for _tok in self.llm.generate(toks, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0,
                                      temp=0.0, repeat_penalty=1.0):
            now = time.perf_counter()
            if n == 0:
                first = now
            last, n = now, n + 1
            if n >= max_tokens:
                break
        return {"prompt_tokens": len(toks), "ttft": first - t0,
                "prompt_tps": len(toks) / (first - t0),
                "gen_tps": (n - 1) / (last - first), "n": n}


async def served_run(url: str, tag: str, max_tokens: int) -> list[dict[str, float]]:
    out = []
    async with aiohttp.ClientSession() as s:
        for i in [tag]:
            body = {"model": "smollm2-135m", "max_tokens": max_tokens, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": PROMPTS[0].format(i=i)}]}
            t0 = time.perf_counter()
            first = last = 0.0
            n_events, usage = 0, {}
            async with s.post(f"{url}/v1/chat/completions", json=body) as r:
                async for raw in r.content:
                    if not raw.startswith(b"data: {"):
                        continue
                    data = json.loads(raw[6:])
                    if data.get("usage"):
                        usage = data["usage"]
                    if data["choices"] and data["choices"][0]["delta"].get("content"):
                        now = time.perf_counter()
                        if n_events == 0:
                            first = now
                        last, n_events = now, n_events + 1
            n = usage["completion_tokens"]
            out.append({"prompt_tokens": usage["prompt_tokens"], "ttft": first - t0,
                        "prompt_tps": usage["prompt_tokens"] / (first - t0),
                        "gen_tps": (n - 1) / (last - first), "n": n})
    return out


def model_table(runs: int, max_tokens: int) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([*RUNG, "serve", "--port", str(port)], f"{url}/readyz")
    try:
        model = Direct()
        model.run("warm-up", max_tokens)  # first calls are slower on both paths
        asyncio.run(served_run(url, "warm-up", max_tokens))
        direct, served = [], []
        for i in range(runs):  # interleaved so that drift hits both sides alike; distinct
            # prompts so that neither side reuses a cached prompt
            direct.append(model.run(f"d{i}", max_tokens))
            served += asyncio.run(served_run(url, f"s{i}", max_tokens))
        cur, peak = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    def med(rows: list[dict[str, float]], k: str) -> float:
        return statistics.median(r[k] for r in rows)

    lines = [
        "| path | prompt tokens | prompt tok/s | gen tok/s | TTFT ms | tokens |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in (("llama-cpp-python direct", direct), ("rung serve (HTTP, SSE)", served)):
        lines.append(f"| {name} | {med(rows, 'prompt_tokens'):.0f} | {med(rows, 'prompt_tps'):.0f}"
                     f" | {med(rows, 'gen_tps'):.1f} | {med(rows, 'ttft') * 1000:.0f}"
                     f" | {med(rows, 'n'):.0f} |")
    lines.append(f"| **ratio rung/direct** | | {med(served, 'prompt_tps') / med(direct, 'prompt_tps'):.3f}"
                 f" | {med(served, 'gen_tps') / med(direct, 'gen_tps'):.3f} | | |")
    lines.append("")
    lines.append(f"rung serve RSS after the runs: {cur:.0f} MB (peak {peak:.0f} MB); "
                 f"{runs} runs each, medians, greedy, max_tokens={max_tokens}.")
    return "\n".join(lines)


# -- part 2: gateway overhead --------------------------------------------------------------
async def _conn(port: int, body: bytes, n: int, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    for _ in range(n):
        t = time.perf_counter()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"bench: got {head[:40]!r}")
        i = head.lower().find(b"content-length:")
        await reader.readexactly(int(head[i + 15: head.find(b"\r\n", i)]))
        lat.append(time.perf_counter() - t)
    writer.close()


async def load(port: int, model: str, conc: int, total: int) -> tuple[list[float], float]:
    body = json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    lat: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_conn(port, body, total // conc, lat) for _ in range(conc)))
    return lat, len(lat) / (time.perf_counter() - t0)


def gateway_table(n1: int, n32: int) -> str:
    up_port, rung_port = free_port(), free_port()
    env = dict(os.environ)
    upstream = subprocess.Popen([sys.executable, "-m", "rung.devtools.upstream", "--port",
                                 str(up_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    cfg = Path(tempfile.mkdtemp()) / "bench.toml"
    cfg.write_text(f"""
[[tiers]]
name = "upstream"
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
""")
    gateway = start([*RUNG, "serve", "--config", str(cfg), "--port", str(rung_port)],
                    f"http://127.0.0.1:{rung_port}/readyz", env)
    try:
        import uvloop

        run = uvloop.run
        res: dict[str, Any] = {}
        for name, port in (("upstream direct", up_port), ("through rung", rung_port)):
            run(load(port, "upstream", 1, 200))  # warm-up
        for block in range(4):  # interleave blocks: drift hits both sides alike
            for name, port in (("upstream direct", up_port), ("through rung", rung_port)):
                lat, _ = run(load(port, "upstream", 1, n1 // 4))
                res.setdefault(name, {"lat": [], "rps": []})["lat"] += lat
        for block in range(2):
            for name, port in (("upstream direct", up_port), ("through rung", rung_port)):
                _, rps = run(load(port, "upstream", 32, n32 // 2))
                res[name]["rps"].append(rps)
        rss = rss_mb(gateway.pid)
    finally:
        for p in (gateway, upstream):
            p.terminate()
            p.wait(timeout=30)
    d, g = res["upstream direct"], res["through rung"]
    lines = ["| path | p50 ms (c=1) | p99 ms (c=1) | req/s (c=32) |", "|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {pct(r['lat'], .5) * 1000:.2f} | {pct(r['lat'], .99) * 1000:.2f}"
                     f" | {statistics.mean(r['rps']):.0f} |")
    lines.append(f"| **added by rung** | {(pct(g['lat'], .5) - pct(d['lat'], .5)) * 1000:.2f} | "
                 f"{(pct(g['lat'], .99) - pct(d['lat'], .99)) * 1000:.2f} | |")
    lines.append("")
    lines.append(f"{len(g['lat'])} sequential requests per path at c=1, {n32} at c=32 "
                 f"(non-streaming, 16-token reply); rung RSS {rss[0]:.0f} MB.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced sizes")
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--skip-gateway", action="store_true")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}\n")
    if not args.skip_model:
        print("### Embedded model: direct vs through rung serve\n")
        print(model_table(runs=2 if args.quick else 5, max_tokens=64 if args.quick else 128))
        print()
    if not args.skip_gateway:
        print("### Gateway overhead in front of an instant upstream\n")
        print(gateway_table(n1=400 if args.quick else 4000, n32=2000 if args.quick else 20000))


if __name__ == "__main__":
    main()
