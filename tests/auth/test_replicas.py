"""Three replicas on one Postgres share keys, rate windows, budgets and traces.

Real servers on loopback (three ``create_app`` on one database, one fake upstream tier
that answers at once), keys made and revoked through ``rung keys --store postgresql://``.
Without ``RUNG_TEST_POSTGRES_URL`` these skip (``source .ci/postgres.sh`` starts one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from rung.auth import shared
from rung.auth.keys import ApiKey, PostgresKeyStore
from rung.auth.shared import SharedLimiter
from rung.cli.main import main
from rung.config import Config
from rung.errors import ConfigError, RateLimited, StoreUnavailable
from rung.server.app import create_app
from rung.store.base import open_store
from tests.conftest import REPO, config_of, http, live, upstream_server, upstream_tier
from tests.conftest import wait_ready as _wait_ready
from tests.store.conftest import pg_admin_url, pg_url  # noqa: F401 - fixtures used below

# "one two three": 3 prompt tokens at 1 each, so every answer costs 3.
BODY = {"model": "up", "messages": [{"role": "user", "content": "one two three"}]}
REPLICAS = 3


def _config(pg: str, upstream_url: str) -> Config:
    return config_of(server={"auth": "required"}, store={"url": pg},
                     tiers=[upstream_tier("up", upstream_url)
                            | {"cost": {"input_per_mtok": 1e6}}])


@contextmanager
def replicas(pg: str, n: int = REPLICAS, *, processes: Path | None = None
             ) -> Iterator[list[str]]:
    """The URLs of ``n`` rung servers on one Postgres, each with its own trace store, keys
    and limiter: apps in this process, or ``rung serve`` processes (config and logs in
    ``processes``)."""
    with upstream_server() as up, ExitStack() as stack:
        if processes is None:
            urls = [stack.enter_context(live(create_app(_config(pg, up.url)))).url
                    for _ in range(n)]
        else:
            urls = [stack.enter_context(_serve(processes / f"replica{i}", pg, up.url))
                    for i in range(n)]
        for url in urls:
            _wait_ready(url)
        yield urls


@contextmanager
def _serve(home: Path, pg: str, upstream_url: str) -> Iterator[str]:
    """``rung serve`` in a process of its own, on a free loopback port."""
    home.mkdir(parents=True)
    (home / "rung.toml").write_text(
        f'[server]\nauth = "required"\n[store]\nurl = "{pg}"\n[[tiers]]\nname = "up"\n'
        f'backend = {{ type = "openai", base_url = "{upstream_url}/v1", model = "up" }}\n'
        'cost = { input_per_mtok = 1e6 }\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(home / "log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rung.cli.main", "serve", "--config",
                                 str(home / "rung.toml"), "--port", str(port)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (home / "log").read_text()
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _keys(capsys: pytest.CaptureFixture[str], pg: str, *args: str) -> str:
    assert main(["keys", *args, "--store", pg]) == 0
    return capsys.readouterr().out.strip()


def _call(url: str, secret: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    r = http("POST", f"{url}/v1/chat/completions", BODY,
             headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    return r.status, r.json(), r.headers


def _traces(pg: str, key_id: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(pg) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT id, status FROM traces WHERE key_id = %s", (key_id,))]


@pytest.mark.parametrize("processes", [False, True], ids=["apps", "processes"])
def test_three_replicas_share_rate_limits_budgets_revocation_and_traces(
        pg_url: str, processes: bool, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    with replicas(pg_url, processes=tmp_path if processes else None) as servers:
        # rpm 30, 45 requests at once, spread over the three replicas
        kid, secret = _keys(capsys, pg_url, "create", "--name", "app", "--rpm", "30").split()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(15) as pool:
            results = list(pool.map(lambda i: (i % REPLICAS, *_call(servers[i % REPLICAS],
                                                                    secret)), range(45)))
        took = time.monotonic() - t0
        statuses = Counter(status for _, status, _, _ in results)
        per_replica = Counter((i, status) for i, status, _, _ in results)
        with capsys.disabled():
            print(f"\n{len(servers)} replicas ({'processes' if processes else 'apps'}), "
                  f"rpm 30: 45 requests in {took:.2f} s: {dict(statuses)}; per replica "
                  f"{sorted(per_replica.items())}")
        assert took < 30  # all inside one minute's window
        assert statuses == {200: 30, 429: 15}
        for _, status, body, headers in results:
            if status == 429:
                assert body["error"]["code"] == "rate_limit_exceeded"
                assert 1 <= int(headers["retry-after"]) <= 60
        # every answered request has exactly one trace, and so does every refused one
        answered = {body["id"] for _, status, body, _ in results if status == 200}
        traces = _traces(pg_url, kid)
        assert len(traces) == 45 and len({t for t, _ in traces}) == 45
        assert {t for t, s in traces if s == "ok"} == answered
        assert Counter(s for _, s in traces) == {"ok": 30, "rate_limit_exceeded": 15}

        # a daily budget of 10 at cost 3 per answer: 4 answers, whichever replica asks
        bid, poor = _keys(capsys, pg_url, "create", "--name", "poor",
                          "--daily-budget", "10").split()
        got = [_call(servers[i % REPLICAS], poor) for i in range(9)]
        with capsys.disabled():
            print(f"daily budget 10: {[s for s, _, _ in got]}")
        assert [s for s, _, _ in got] == [200] * 4 + [429] * 5
        assert {b["error"]["code"] for s, b, _ in got if s == 429} == {"budget_exceeded"}
        assert Counter(s for _, s in _traces(pg_url, bid)) == {"ok": 4, "budget_exceeded": 5}
        assert _keys(capsys, pg_url, "update", bid, "--tools-deny", "x_*") == \
            f"{bid}\ttools deny=x_*"

        # revoked: refused by all three within a second (a key without limits, so it is
        # each replica's copy of the keys that must learn of it)
        rid, free = _keys(capsys, pg_url, "create", "--name", "free").split()
        assert [_call(s, free)[0] for s in servers] == [200] * REPLICAS  # new: works at once
        time.sleep(shared.POLL_S * 3)  # each replica's copy of the keys now holds it
        assert _keys(capsys, pg_url, "revoke", rid) == f"revoked {rid}"
        t0 = time.monotonic()
        refused_after: dict[int, float] = {}
        while len(refused_after) < REPLICAS and time.monotonic() - t0 < 5:
            for i, s in enumerate(servers):
                if i not in refused_after:
                    status, body, _ = _call(s, free)
                    if status == 401:
                        assert body["error"]["code"] == "revoked_api_key"
                        refused_after[i] = time.monotonic() - t0
            time.sleep(0.01)
        with capsys.disabled():
            print(f"revoked: refused after "
                  f"{[round(refused_after[i], 3) for i in sorted(refused_after)]} s")
        assert len(refused_after) == REPLICAS and max(refused_after.values()) < 1.0
        # ...and a revoked key with limits is refused by the shared count at once
        assert _keys(capsys, pg_url, "revoke", kid) == f"revoked {kid}"
        assert _call(servers[1], secret)[0] == 401
        listing = _keys(capsys, pg_url, "list")
        assert listing.count("revoked") == 2 and "rk-" not in listing


def _cut(pg: str, pg_admin: str, *, allow: bool) -> None:
    """Let no one connect to the test's database (and drop who is connected), or again."""
    import psycopg

    name = pg.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s", (name,))


def _drive(lim: SharedLimiter, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(run())
    finally:
        lim.close()


def _key(pg: str, **limits: Any) -> ApiKey:
    store = PostgresKeyStore(pg)
    try:
        return store.create("k", **limits)[0]
    finally:
        store.close()


def test_the_shared_window_slides_on_postgres_clock(pg_url: str) -> None:  # noqa: F811
    key = _key(pg_url, rpm=3, tpm=100)
    lim = SharedLimiter(pg_url, keys=lambda _: key)
    t0 = 1_800_000_000.0

    async def run() -> None:
        for dt in (0, 10, 20):
            await lim.enter(key, now=t0 + dt)
        with pytest.raises(RateLimited) as info:
            await lim.enter(key, now=t0 + 59.5)
        assert info.value.retry_after_s == pytest.approx(0.5)
        await lim.enter(key, now=t0 + 60.01)  # the first left the window
        await lim.charge(key.id, tokens=150, cost=0.0, now=t0 + 61)
        with pytest.raises(RateLimited, match="100 tokens per minute"):
            await lim.enter(key, now=t0 + 90.5)  # a request slot is free, tokens are not
        await lim.enter(key, now=t0 + 121.5)

    _drive(lim, run)


def test_budgets_start_from_the_stored_traces_and_roll_over(pg_url: str) -> None:  # noqa: F811
    from rung.store.trace import Trace

    key = _key(pg_url, daily_budget=1.0, monthly_budget=1.5)
    day = 1_800_000_000.0 - 1_800_000_000.0 % 86400  # 2027-01-15 00:00 UTC
    store = open_store(pg_url)
    store.write_sync(Trace(id="before", time=day + 60, model="m", key_id=key.id, cost=0.9))
    store.close()
    lim = SharedLimiter(pg_url, keys=lambda _: key)

    async def run() -> None:
        await lim.enter(key, now=day + 120)  # 0.9 stored < 1.0
        await lim.charge(key.id, tokens=1, cost=0.2, now=day + 121)
        with pytest.raises(RateLimited) as info:
            await lim.enter(key, now=day + 122)
        assert info.value.code == "budget_exceeded" and "Daily" in info.value.message
        assert info.value.retry_after_s == pytest.approx(86400 - 122)
        await lim.enter(key, now=day + 86400 + 1)  # a new UTC day; the month holds 1.1
        await lim.charge(key.id, tokens=1, cost=0.5, now=day + 86400 + 2)
        with pytest.raises(RateLimited, match="Monthly budget of 1.5"):
            await lim.enter(key, now=day + 86400 + 3)

    _drive(lim, run)


def test_an_unreachable_postgres_is_a_quick_503_not_a_hang(pg_url: str,  # noqa: F811
                                                           pg_admin_url: str) -> None:  # noqa: F811
    key = _key(pg_url, rpm=100)
    lim = SharedLimiter(pg_url, keys=lambda _: key, timeout_s=1.0)

    async def run() -> None:
        await lim.enter(key)
        _cut(pg_url, pg_admin_url, allow=False)
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await lim.enter(key)
        assert time.monotonic() - t0 < 2.5
        assert info.value.status == 503 and info.value.code == "store_unavailable"
        await lim.charge(key.id, tokens=1, cost=1.0)  # logged, never raised
        _cut(pg_url, pg_admin_url, allow=True)
        await lim.enter(key)  # back: a fresh connection

    _drive(lim, run)


def test_a_replica_refuses_with_503_while_postgres_is_gone(pg_url: str,  # noqa: F811
                                                           pg_admin_url: str) -> None:  # noqa: F811
    with replicas(pg_url, n=1) as (server,):
        keys = PostgresKeyStore(pg_url)
        _, secret = keys.create("k", rpm=100)
        keys.close()
        time.sleep(shared.POLL_S * 3)
        assert _call(server, secret)[0] == 200
        _cut(pg_url, pg_admin_url, allow=False)
        t0 = time.monotonic()
        status, body, headers = _call(server, secret)
        print(f"\nPostgres gone: {status} {body['error']['code']} after "
              f"{time.monotonic() - t0:.2f} s")
        assert status == 503 and body["error"]["code"] == "store_unavailable"
        assert time.monotonic() - t0 < 5 and headers["retry-after"] == "1"
        _cut(pg_url, pg_admin_url, allow=True)
        t0 = time.monotonic()
        while _call(server, secret)[0] != 200:
            assert time.monotonic() - t0 < 10, "the replica did not recover"
            time.sleep(0.1)
        print(f"Postgres back: answered again after {time.monotonic() - t0:.2f} s")


def test_a_mirror_out_of_touch_refuses_rather_than_trust_old_keys(
        pg_url: str, pg_admin_url: str) -> None:  # noqa: F811
    from rung.auth.keys import key_hash

    keys = PostgresKeyStore(pg_url)
    _, secret = keys.create("free")
    keys.close()
    mirror = shared.KeyMirror(pg_url, poll_s=0.05, stale_s=0.5)
    try:
        assert mirror.lookup_hash(key_hash(secret)) is not None
        _cut(pg_url, pg_admin_url, allow=False)
        time.sleep(0.7)
        with pytest.raises(StoreUnavailable):
            mirror.lookup_hash(key_hash(secret))
        _cut(pg_url, pg_admin_url, allow=True)
        time.sleep(0.5)
        assert mirror.lookup_hash(key_hash(secret)) is not None
    finally:
        mirror.close()


def test_without_psycopg_a_postgres_store_is_a_one_line_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rung.auth.keys import open_keys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    for opener in (open_store, open_keys):
        with pytest.raises(ConfigError, match=r"pip install 'rung\[postgres\]'"):
            opener("postgresql://u@127.0.0.1:1/db")

