#!/usr/bin/env python3
"""Three ``rung serve`` processes on one Postgres, a key with ``--rpm 30``, kept busy.

    .venv/bin/python bench/replicas_bench.py --postgres postgresql://postgres@127.0.0.1:PORT/db
        [--replicas 3] [--seconds 130] [--rate 1]

Starts the fake upstream (``rung.devtools.upstream``) and ``--replicas`` gateways as
separate processes on a fresh database (dropped afterwards), makes a key with
``rung keys create --rpm 30 --store postgresql://...``, then sends ``--rate`` requests per
second per replica for ``--seconds``. Prints what was answered per replica and in total,
the most answers in any 60 s, and whether every answered request has exactly one trace.
``bash .ci/postgres.sh`` starts a server.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
RPM = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, secret: str) -> tuple[int, str, float]:
    status, cid = _post(url, secret)
    return status, cid, time.monotonic()


def _post(url: str, secret: str) -> tuple[int, str]:
    body = json.dumps({"model": "up", "messages": [{"role": "user", "content": "hi"}]})
    req = urllib.request.Request(f"{url}/v1/chat/completions", data=body.encode(),
                                 headers={"Authorization": f"Bearer {secret}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())["id"]
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not start") from None
            time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="a URL whose user may create databases")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=130.0)
    ap.add_argument("--rate", type=float, default=1.0, help="requests per second per replica")
    args = ap.parse_args()
    import psycopg

    name = f"rung_bench_{uuid.uuid4().hex[:8]}"
    pg = urlunsplit(urlsplit(args.postgres)._replace(path=f"/{name}"))
    procs: list[subprocess.Popen[bytes]] = []
    key_id = ""
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            up = f"http://127.0.0.1:{free_port()}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "rung.devtools.upstream", "--port", up.rsplit(":")[-1]],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            cfg = Path(tmp) / "rung.toml"
            cfg.write_text(f'[server]\nauth = "required"\n[store]\nurl = "{pg}"\n'
                           f'[[tiers]]\nname = "up"\nbackend = {{ type = "openai", base_url = '
                           f'"{up}/v1", model = "up" }}\n')
            urls = [f"http://127.0.0.1:{free_port()}" for _ in range(args.replicas)]
            for url in urls:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "rung.cli.main", "serve", "--config", str(cfg),
                     "--port", url.rsplit(":")[-1]], cwd=ROOT, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            for url, proc in zip(urls, procs[1:], strict=True):
                wait_up(url, proc)
            out = subprocess.run([sys.executable, "-m", "rung.cli.main", "keys", "create",
                                  "--name", "bench", "--rpm", str(RPM), "--store", pg],
                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout
            key_id, secret = out.split()
            results = drive(urls, secret, args.seconds, args.rate)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        with psycopg.connect(pg) as conn:
            traces = conn.execute("SELECT id, status FROM traces WHERE key_id = %s",
                                  (key_id,)).fetchall()
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    report(results, traces, args)
    return 0


Result = tuple[float, float, int, int, str]  # sent, answered, replica, status, id


def drive(urls: list[str], secret: str, seconds: float, rate: float) -> list[Result]:
    """Every request: when it was sent and answered (seconds since the start), to which
    replica, its status and completion id."""
    t0 = time.monotonic()
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(4 * len(urls)) as pool:
        i = 0
        while (now := time.monotonic() - t0) < seconds:
            for r, url in enumerate(urls):
                jobs.append((now, r, pool.submit(post, url, secret)))
            i += 1
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        out = []
        for sent, r, job in jobs:
            status, cid, answered = job.result()
            out.append((sent, answered - t0, r, status, cid))
        return out


def report(results: list[Result], traces: list[tuple[str, str]],
           args: argparse.Namespace) -> None:
    ok = sorted((sent, answered) for sent, answered, _, status, _ in results if status == 200)
    # A request was admitted between its sending and its answer: count those that were
    # both sent and answered inside one 60 s span (more than the limit there would be an
    # overrun, whatever the client's and the replicas' delays).
    most = max((sum(1 for s, a in ok if t <= s and a < t + 60) for t, _ in ok), default=0)
    per = Counter((r, status) for _, _, r, status, _ in results)
    ids = {cid for _, _, _, status, cid in results if status == 200}
    stored = Counter(tid for tid, status in traces if status == "ok")
    print(f"{args.replicas} `rung serve` processes on one Postgres, key --rpm {RPM}, "
          f"{args.rate:g} requests/s per replica for {args.seconds:g} s\n")
    print("| replica | requests | answered (200) | refused (429) | other |")
    print("|---|---:|---:|---:|---:|")
    for r in range(args.replicas):
        total = sum(n for (rr, _), n in per.items() if rr == r)
        other = total - per[(r, 200)] - per[(r, 429)]
        print(f"| {r + 1} | {total} | {per[(r, 200)]} | {per[(r, 429)]} | {other} |")
    statuses = Counter(status for _, _, _, status, _ in results)
    print(f"| all | {len(results)} | {statuses[200]} | {statuses[429]} | "
          f"{len(results) - statuses[200] - statuses[429]} |\n")
    minutes = Counter(int(s // 60) for s, _ in ok)
    print(f"answered, by the minute of the run they were sent in: "
          f"{', '.join(f'{m + 1}: {minutes[m]}' for m in sorted(minutes))}")
    print(f"most answered requests sent and answered within one 60 s: {most} (limit {RPM})")
    print(f"answered requests with exactly one trace: "
          f"{sum(1 for i in ids if stored[i] == 1)} of {len(ids)}; traces in all: "
          f"{len(traces)}")


if __name__ == "__main__":
    sys.exit(main())
