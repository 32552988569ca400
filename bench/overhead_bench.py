#!/usr/bin/env python3
"""Benchmark: rung's request-path cost against a minimal aiohttp pass-through
(bench/passthrough.py), side by side in one run, driven by `hey`, a load client that is
not rung's own.

    .venv/bin/python bench/overhead_bench.py            # 2,016 requests at c=32, 2 rounds
    .venv/bin/python bench/overhead_bench.py --quick    # 512 requests at c=32, 2 rounds

Three processes on loopback: the instant upstream (rung.devtools.upstream), rung serve
with one openai tier pointed at it (requests pinned to that tier by model name,
non-streaming, traces into a temp SQLite store), and the pass-through pointed at the same
upstream. The rounds are interleaved (rung, pass-through, rung, pass-through) and each
server's CPU time (utime + stime of the process, its threads and its children, from
/proc) is read before and after its own round. Then `hey -c 1` gives the latency each
adds over the upstream alone. Every response must be a 200. All processes stop on exit,
on error too. Needs `hey` on PATH (Debian: apt-get install hey).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import ROOT, free_port

CLIENT = "hey"
TICK = os.sysconf("SC_CLK_TCK")
BODY = {"model": "upstream", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Say hello."}]}


@dataclass(frozen=True)
class Size:
    requests: int  # per round at c=32
    conc: int
    rounds: int
    warmup: int
    c1_requests: int  # per round at c=1


FULL = Size(requests=2016, conc=32, rounds=2, warmup=256, c1_requests=300)
QUICK = Size(requests=512, conc=32, rounds=2, warmup=128, c1_requests=100)


@dataclass(frozen=True)
class HeyResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds of a process, all its threads and its children, living or reaped."""
    ticks = 0
    for p in _descendants(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:  # exited between the listing and the read
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / TICK


def settled_cpu_s(pid: int, limit_s: float = 3.0) -> float:
    """CPU seconds once the process has gone idle (deferred work such as trace writes
    counts for the round that caused it)."""
    last, deadline = cpu_s(pid), time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_s(pid)
        if now == last:
            break
        last = now
    return last


class Procs:
    """The servers under test; every one of them is stopped on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def spawn(self, name: str, cmd: list[str], ready: str | int,
              timeout_s: float = 120) -> subprocess.Popen[bytes]:
        """Start `cmd`, then wait until `ready` (a URL answering 200, or a port
        accepting connections) says it serves."""
        log = (self.logdir / f"{name}.log").open("wb")
        self.logs.append(log)
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if isinstance(ready, int):
                    socket.create_connection(("127.0.0.1", ready), timeout=1).close()
                    return proc
                with urllib.request.urlopen(ready, timeout=1) as r:
                    if r.status == 200:
                        return proc
            except OSError:
                time.sleep(0.1)
        tail = (self.logdir / f"{name}.log").read_text(errors="replace")[-2000:]
        raise SystemExit(f"overhead_bench: {name} did not become ready:\n{tail}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


_STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses", re.MULTILINE)


def hey(url: str, body: Path, *, n: int, c: int) -> HeyResult:
    """One hey run; every response must be a 200."""
    cmd = [CLIENT, "-n", str(n), "-c", str(c), "-m", "POST", "-T", "application/json",
           "-D", str(body), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    codes = {int(k): int(v) for k, v in _STATUS.findall(out)}
    if codes != {200: n} or "Error distribution" in out:
        raise SystemExit(f"overhead_bench: not all {n} answers were 200 from {url}:\n{out}")

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        if m is None:
            raise SystemExit(f"overhead_bench: cannot read {pattern!r} from hey:\n{out}")
        return float(m.group(1))

    return HeyResult(requests=n, rps=num(r"Requests/sec:\s+([\d.]+)"),
                     p50_ms=num(r"50% in ([\d.]+) secs") * 1000,
                     p99_ms=num(r"99% in ([\d.]+) secs") * 1000)


def check_answer(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        data = json.loads(r.read())
    if not data["choices"][0]["message"]["content"]:
        raise SystemExit(f"overhead_bench: empty answer from {url}: {data}")


def client_version() -> str:
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", CLIENT], check=False,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        v = ""
    return f"{CLIENT} {v}".strip()


def run(size: Size) -> None:
    if shutil.which(CLIENT) is None:
        raise SystemExit(f"overhead_bench: `{CLIENT}` is not on PATH "
                         "(Debian/Ubuntu: apt-get install hey)")
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="rung-overhead-"))
    body = tmp / "body.json"
    body.write_bytes(json.dumps(BODY).encode())
    up_port, rung_port, pass_port = free_port(), free_port(), free_port()
    up_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    (tmp / "rung.toml").write_text(f"""
[[tiers]]
name = "upstream"
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
cost = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}
""")
    db = tmp / "traces.db"
    procs = Procs(tmp)
    try:
        upstream = procs.spawn("upstream", [sys.executable, "-m", "rung.devtools.upstream",
                                            "--port", str(up_port)], up_port)
        servers = {
            "rung serve": procs.spawn(
                "rung", [sys.executable, "-m", "rung.cli.main", "serve", "--config",
                         str(tmp / "rung.toml"), "--port", str(rung_port),
                         "--store", f"sqlite:///{db}"],
                f"http://127.0.0.1:{rung_port}/readyz"),
            "pass-through": procs.spawn(
                "pass", [sys.executable, str(ROOT / "bench" / "passthrough.py"),
                         "--port", str(pass_port), "--upstream", up_url],
                f"http://127.0.0.1:{pass_port}/healthz"),
        }
        urls = {"rung serve": f"http://127.0.0.1:{rung_port}/v1/chat/completions",
                "pass-through": f"http://127.0.0.1:{pass_port}/v1/chat/completions"}
        for url in urls.values():
            check_answer(url, body.read_bytes())
            hey(url, body, n=size.warmup, c=size.conc)  # warm-up, not measured

        rows: list[tuple[str, HeyResult, float, float]] = []  # name, hey, cpu ms, up cpu ms
        for _ in range(size.rounds):  # interleaved: drift hits both sides alike
            for name, proc in servers.items():
                before, up_before = settled_cpu_s(proc.pid), settled_cpu_s(upstream.pid)
                res = hey(urls[name], body, n=size.requests, c=size.conc)
                after, up_after = settled_cpu_s(proc.pid), settled_cpu_s(upstream.pid)
                rows.append((name, res, (after - before) * 1000 / res.requests,
                             (up_after - up_before) * 1000 / res.requests))

        c1: dict[str, list[float]] = {}
        for _ in range(size.rounds):
            for name, url in (("upstream alone", up_url), *urls.items()):
                c1.setdefault(name, []).append(hey(url, body, n=size.c1_requests, c=1).p50_ms)
        try:
            with closing(sqlite3.connect(db)) as con:
                traces = int(con.execute("SELECT count(*) FROM traces").fetchone()[0])
        except sqlite3.Error:
            traces = -1
    finally:
        procs.stop()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared by client, "
          f"upstream and server; load average {load:.1f} at the start), Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
          f"client: {client_version()}\n")
    print("| target | client | requests | req/s | CPU ms/req | p50 ms | p99 ms "
          "| upstream CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r, cpu, up in rows:
        print(f"| {name} | {CLIENT} -c {size.conc} | {r.requests} | {r.rps:.0f} | {cpu:.2f} "
              f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {up:.2f} |")

    def per_req(name: str) -> float:
        mine = [(r.requests, cpu) for n, r, cpu, _ in rows if n == name]
        return sum(k * cpu for k, cpu in mine) / sum(k for k, _ in mine)

    ratios = [a[2] / b[2] for a, b in zip(rows[0::2], rows[1::2], strict=True)]
    print(f"| **ratio rung/pass-through** | | | | **{per_req('rung serve') / per_req('pass-through'):.2f}**"
          f" ({', '.join(f'{x:.2f}' for x in ratios)} by round) | | | |")
    print()
    print(f"Added p50 latency at c=1 over the upstream alone ({CLIENT} -c 1 -n "
          f"{size.c1_requests}, {size.rounds} rounds):\n")
    print("| path | p50 ms by round | added p50 ms by round |")
    print("|---|---|---|")
    for name, p50s in c1.items():
        added = [p - u for p, u in zip(p50s, c1["upstream alone"], strict=True)]
        print(f"| {name} | {', '.join(f'{p:.1f}' for p in p50s)} | "
              f"{'' if name == 'upstream alone' else ', '.join(f'{a:.1f}' for a in added)} |")
    print()
    print(f"{size.rounds} rounds of {size.requests} requests at c={size.conc} per target, "
          f"interleaved, after {size.warmup} warm-up requests each; non-streaming, pinned "
          f"to one openai tier over an instant loopback upstream; CPU is the server "
          f"process's own (clock tick {1000 / TICK:.0f} ms). rung stored {traces} traces "
          f"(median c=32 req/s: rung "
          f"{statistics.median(r.rps for n, r, _, _ in rows if n == 'rung serve'):.0f}, "
          f"pass-through "
          f"{statistics.median(r.rps for n, r, _, _ in rows if n == 'pass-through'):.0f}).")
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="512 requests a round, 100 at c=1")
    args = p.parse_args()
    run(QUICK if args.quick else FULL)


if __name__ == "__main__":
    main()
