"""The Postgres trace store keeps the SQLite store's promises, on a real Postgres server.

Each test gets an empty database of its own (``pg_url``, tests/store/conftest.py); without
``RUNG_TEST_POSTGRES_URL`` they skip.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rung.cli.main import main
from rung.devtools.upstream import UpstreamBehaviour
from rung.errors import ConfigError
from rung.store import sqlite
from rung.store.base import open_store
from rung.store.postgres import MIGRATIONS, PostgresStore, migrate
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace
from tests.conftest import config_of, http, upstream_server, upstream_tier
from tests.store.conftest import rung_server_on
from tests.store.test_traces import COST0, COST1, _fire, check_500


def _traces() -> list[Trace]:
    out = [Trace(id=f"t{i}", time=1_700_000_000 + i, model="rung",
                 tier="small" if i % 2 else "big", key_id="k1" if i < 3 else None,
                 escalated=i % 2 == 0, status="ok" if i < 5 else "backend_timeout",
                 input_tokens=i, output_tokens=2 * i, latency_ms=1.5, cost=0.001 * i)
           for i in range(6)]
    out.append(Trace(id="full", time=1_700_000_003.25, model="rung", tier="big",
                     stream=True, input_tokens=7, output_tokens=9, latency_ms=12.5,
                     ttft_ms=3.5, cost=1.25e-6, score=0.625, prompt_hash="ab" * 16,
                     messages=[{"role": "user", "content": "héllo \"q\""}], response="hi",
                     route={"reason": "score", "attempts": [{"tier": "big",
                                                             "outcome": "answered"}]},
                     error=None))
    out.append(Trace(id="tools", time=1_700_000_004.5, model="rung", tier="big",
                     tools={"offered": ["get_weather", "get_time"],
                            "choice": {"type": "function", "function": {"name": "get_time"}},
                            "calls": [{"id": "c1", "name": "get_time", "arguments": "{}"}]}))
    return out


def _columns_pg(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                        "table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
    return [r[0] for r in rows]


def test_migrations_are_idempotent_versioned_and_match_sqlite(pg_url: str,
                                                               tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn) == len(MIGRATIONS) == len(sqlite.MIGRATIONS)
        assert migrate(conn) == len(MIGRATIONS)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version "
                                               "ORDER BY version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        lite = sqlite.connect(tmp_path / "t.db")
        for table in ("traces", "api_keys", "feedback"):
            assert _columns_pg(conn, table) == \
                [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
        lite.close()
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes "
                                              "WHERE tablename = 'traces'")}
        assert {"traces_time", "traces_tier", "traces_key"} <= indexes


def test_replicas_starting_at_once_migrate_once(pg_url: str) -> None:
    n = 6
    barrier = threading.Barrier(n)
    results: list[object] = []

    def replica() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            barrier.wait()
            try:
                results.append(migrate(conn))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [len(MIGRATIONS)] * n
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == \
            (len(MIGRATIONS),)


def test_open_store_gives_a_postgres_store(pg_url: str) -> None:
    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore) and store.count() == 0
        store.close()


def test_unreachable_server_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as err:
        PostgresStore("postgresql://rung:s3cret@127.0.0.1:9/traces?connect_timeout=5")
    assert "s3cret" not in str(err.value) and "127.0.0.1:9/traces" in str(err.value)


FILTERS: list[dict[str, Any]] = [
    {},
    {"newest_first": True},
    {"tier": "small"},
    {"tier": "big", "limit": 2},
    {"key_id": "k1"},
    {"escalated": True},
    {"escalated": False},
    {"errors": True},
    {"errors": False, "tier": "big"},
    {"since": 1_700_000_002, "until": 1_700_000_004},
    {"since": 1_700_000_003.25},
    {"limit": 3, "newest_first": True},
    {"limit": 0},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_write_query_round_trip_agrees_with_sqlite(pg_url: str, tmp_path: Path,
                                                   filters: dict[str, Any]) -> None:
    pg, lite = PostgresStore(pg_url), SqliteStore(tmp_path / "t.db")
    for t in _traces():
        pg.write_sync(t)
        lite.write_sync(t)
    try:
        got = list(pg.query(**filters))
        assert got == list(lite.query(**filters))
        assert pg.count() == lite.count() == len(_traces())
    finally:
        pg.close()
        lite.close()
    if not filters:
        assert got == sorted(_traces(), key=lambda t: (t.time, t.id))


def test_rewriting_a_trace_replaces_it(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.write_sync(Trace(id="a", time=1.0, model="m"))
    store.write_sync(Trace(id="a", time=1.0, model="m", status="backend_timeout"))
    assert [t.status for t in store.query()] == ["backend_timeout"]
    store.close()


async def test_a_bad_trace_fails_alone_and_nul_is_stored(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    good = [Trace(id=f"g{i}", time=float(i), model="m\x00x", response="a\x00b",
                  messages=[{"role": "user", "content": "nul \x00 here"}]) for i in range(20)]
    bad = Trace(id="bad", time=0.5, model="m", input_tokens=2**70)  # beyond BIGINT
    results = await asyncio.gather(*(store.write(t) for t in [*good[:10], bad, *good[10:]]),
                                   return_exceptions=True)
    await asyncio.to_thread(store.close)
    assert isinstance(results[10], psycopg.DataError)
    assert results[:10] + results[11:] == [None] * 20
    store = PostgresStore(pg_url)
    (first, *_) = got = list(store.query())
    store.close()
    assert [t.id for t in got] == [t.id for t in good]
    assert first.model == "m\ufffdx" and first.response == "a\ufffdb"
    assert first.messages == [{"role": "user", "content": "nul \x00 here"}]  # JSON escapes


async def test_close_flushes_every_queued_write(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    tasks = [asyncio.create_task(store.write(Trace(id=f"t{i}", time=float(i), model="m")))
             for i in range(300)]
    await asyncio.sleep(0)  # every task has queued its trace
    await asyncio.to_thread(store.close)
    assert await asyncio.gather(*tasks) == [None] * 300
    store = PostgresStore(pg_url)
    assert store.count() == 300
    store.close()


def test_writes_survive_a_dropped_connection(pg_url: str, pg_admin_url: str) -> None:
    store = PostgresStore(pg_url)
    store.write_sync(Trace(id="before", time=1.0, model="m"))
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        killed = admin.execute("SELECT COUNT(pg_terminate_backend(pid)) FROM "
                               "pg_stat_activity WHERE datname = %s", (dbname,)).fetchone()
    assert killed == (1,)  # the writer's connection
    store.write_sync(Trace(id="after", time=2.0, model="m"))
    assert [t.id for t in store.query()] == ["before", "after"]
    store.close()


def test_cli_lists_and_exports_from_postgres(pg_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = PostgresStore(pg_url)
    for t in _traces():
        store.write_sync(t)
    store.close()
    assert main(["traces", "export", "--store", pg_url, "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["t0", "t1", "t2", "t3", "full", "t4", "tools", "t5"]
    assert rows[6]["tools"] == _traces()[-1].tools and "tools" not in rows[0]
    assert main(["traces", "list", "--store", pg_url, "--errors"]) == 0
    out = capsys.readouterr().out
    assert "backend_timeout" in out and len(out.strip().splitlines()) == 2


def test_500_requests_leave_500_exact_traces_on_postgres(pg_url: str) -> None:
    with upstream_server(UpstreamBehaviour(reply="plain words here")) as a, \
            upstream_server(UpstreamBehaviour(reply='{"ok": true}')) as b:
        cfg = config_of(tiers=[upstream_tier("small", a.url) | {
            "cost": COST0, "verifiers": [{"type": "json"}]},
            upstream_tier("big", b.url) | {"cost": COST1}])
        with rung_server_on(cfg, PostgresStore(pg_url)) as server:
            statuses = asyncio.run(_fire(server.url, 500))
            metrics = http("GET", f"{server.url}/metrics").body.decode()
    assert statuses == [200] * 500
    store = PostgresStore(pg_url)
    traces = list(store.query())
    assert store.count() == 500
    store.close()
    check_500(traces, metrics)

