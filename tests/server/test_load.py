"""Load and crash tests on loopback, bounded in count and time (reduced sizes; the full
sizes run in bench/load_bench.py)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from rung.store.sqlite import SqliteStore
from tests.conftest import (
    ServeProcess,
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)


async def _load(url: str, n: int, conc: int, *, stop_after: float | None = None,
                ) -> tuple[list[str], int]:
    """Send ``n`` requests at concurrency ``conc``; the ids of 200 answers, and errors."""
    ok: list[str] = []
    errors = 0
    counter = iter(range(n))
    t_end = time.monotonic() + stop_after if stop_after else None
    body = {"model": "up", "messages": [{"role": "user", "content": "hello there"}]}

    async def worker(s: aiohttp.ClientSession) -> None:
        nonlocal errors
        for _ in counter:
            if t_end is not None and time.monotonic() > t_end:
                return
            try:
                async with s.post(f"{url}/v1/chat/completions", json=body) as r:
                    data = await r.json()
                    if r.status == 200:
                        ok.append(data["id"])
                    else:
                        errors += 1
            except (TimeoutError, aiohttp.ClientError):
                errors += 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        await asyncio.gather(*(worker(s) for _ in range(conc)))
    return ok, errors


def test_2000_requests_at_concurrency_64_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with upstream_server() as up, \
            rung_server(config_of(tiers=[upstream_tier("up", up.url)]), store=db) as server:
        ok, errors = asyncio.run(_load(server.url, 2000, 64))
    assert errors == 0 and len(ok) == 2000
    store = SqliteStore(db)
    assert {t.id for t in store.query()} == set(ok)
    store.close()


def test_kill_9_under_load_keeps_every_acknowledged_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with upstream_server() as up:
        server = ServeProcess(tmp_path, up.url, db).start()
        assert server.proc is not None
        proc = server.proc

        async def load_then_kill() -> list[str]:
            task = asyncio.create_task(_load(server.url, 100_000, 16, stop_after=5.0))
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            ok, _ = await task
            return ok

        ok = asyncio.run(load_then_kill())
        proc.wait(timeout=10)
        assert len(ok) > 50  # it was under load when it died
        server.start()  # restart on the same store: recovery must keep everything
        try:
            assert http("POST", f"{server.url}/v1/chat/completions",
                        {"model": "up", "messages": [{"role": "user", "content": "x"}]}
                        ).status == 200
        finally:
            server.stop()
    store = SqliteStore(db)
    stored = {t.id for t in store.query()}
    store.close()
    missing = set(ok) - stored
    assert not missing, f"{len(missing)} acknowledged requests lost their trace"


def test_upstream_killed_mid_load_falls_back_then_traffic_returns(tmp_path: Path) -> None:
    """Every request gets a fallback answer or a clean 503 while tier a is down; after it
    restarts, the breaker's probe closes it and traffic returns to it."""
    from rung.devtools.upstream import UpstreamBehaviour

    a_behaviour = UpstreamBehaviour(reply="from a")
    with upstream_server(UpstreamBehaviour(reply="from b")) as b:
        a = upstream_server(a_behaviour)
        a_server = a.__enter__()
        port = int(a_server.url.rsplit(":", 1)[1])
        tiers = [upstream_tier("a", a_server.url, retries=1, backoff_s=0.01,
                               breaker_failures=3, breaker_cooldown_s=0.5, timeout_s=5),
                 upstream_tier("b", b.url)]
        with rung_server(config_of(tiers=tiers), store=tmp_path / "t.db") as server:
            async def answered_by(n: int) -> list[str]:
                out = []
                async with aiohttp.ClientSession() as s:
                    for _ in range(n):
                        async with s.post(f"{server.url}/v1/chat/completions", json={
                                "model": "rung", "messages": [{"role": "user",
                                                               "content": "x"}]}) as r:
                            assert r.status == 200
                            out.append(r.headers["x-rung-tier"])
                return out

            assert set(asyncio.run(answered_by(5))) == {"a"}
            a.__exit__(None, None, None)  # tier a's upstream dies
            t0 = time.monotonic()
            tiers_seen = asyncio.run(answered_by(20))
            assert set(tiers_seen) == {"b"} and time.monotonic() - t0 < 10
            with upstream_server(a_behaviour, port=port):  # it comes back, same address
                time.sleep(0.6)
                assert asyncio.run(answered_by(5))[-1] == "a"


def test_soak_memory_stays_flat(tmp_path: Path) -> None:
    """Reduced soak (the full 10,000-request run is bench/load_bench.py): RSS of a real
    `rung serve` process after 3,000 more requests stays within 10% of its warm level."""
    with upstream_server() as up:
        server = ServeProcess(tmp_path, up.url, tmp_path / "t.db").start()
        assert server.proc is not None
        pid = server.proc.pid

        def rss() -> int:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
            raise AssertionError("no VmRSS")

        try:
            ok, errors = asyncio.run(_load(server.url, 1000, 16))
            warm = rss()
            ok2, errors2 = asyncio.run(_load(server.url, 3000, 16))
            after = rss()
        finally:
            server.stop()
    assert errors == errors2 == 0 and len(ok) + len(ok2) == 4000
    assert after <= warm * 1.10, f"RSS grew from {warm} kB to {after} kB"
