"""SQLite trace store: WAL, append-only migrations, one writer thread that batches.

A write returns only after its batch is committed, so the server acknowledges a request
only once its trace is durable; batching keeps that cheap under load (one commit for
everything queued while the previous commit ran).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rung.store.trace import Trace

# Append-only: never edit a shipped migration, add the next one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE traces (
        id TEXT PRIMARY KEY,
        time REAL NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        tier TEXT,
        key_id TEXT,
        escalated INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        cost REAL NOT NULL,
        score REAL,
        prompt_hash TEXT NOT NULL,
        messages TEXT,
        response TEXT,
        route TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX traces_time ON traces(time);
    CREATE INDEX traces_tier ON traces(tier, time);
    """,
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        revoked REAL,
        admin INTEGER NOT NULL,
        rpm INTEGER,
        tpm INTEGER,
        daily_budget REAL,
        monthly_budget REAL
    );
    CREATE INDEX traces_key ON traces(key_id, time);
    """,
)

COLUMNS = ("id", "time", "model", "status", "tier", "key_id", "escalated", "stream",
           "input_tokens", "output_tokens", "latency_ms", "ttft_ms", "cost", "score",
           "prompt_hash", "messages", "response", "route", "error")
_JSON = {"messages", "route"}
_BOOL = {"escalated", "stream"}


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    version = row[0] or 0
    for i, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (i,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def to_row(t: Trace) -> tuple[Any, ...]:
    # getattr, not asdict(): asdict deep-copies the route and messages (~4x slower).
    values = (getattr(t, c) for c in COLUMNS)
    return tuple(json.dumps(v) if c in _JSON and v is not None else
                 int(v) if c in _BOOL else v for c, v in zip(COLUMNS, values, strict=True))


def from_row(row: tuple[Any, ...]) -> Trace:
    d = dict(zip(COLUMNS, row, strict=True))
    for c in _JSON:
        d[c] = json.loads(d[c]) if d[c] is not None else None
    for c in _BOOL:
        d[c] = bool(d[c])
    d["route"] = d["route"] or {}
    return Trace(**d)


class SqliteStore:
    """``await write(trace)`` returns once the trace is committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._queue: queue.Queue[tuple[Trace, concurrent.futures.Future[None]] | None] = \
            queue.Queue()
        self._thread = threading.Thread(target=self._writer, name="rung-traces", daemon=True)
        self._thread.start()

    def _writer(self) -> None:
        insert = f"INSERT OR REPLACE INTO traces ({', '.join(COLUMNS)}) VALUES " \
                 f"({', '.join('?' * len(COLUMNS))})"
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:  # everything queued meanwhile goes into the same commit
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                self._conn.execute("BEGIN")
                self._conn.executemany(insert, [to_row(t) for t, _ in batch])
                self._conn.execute("COMMIT")
            except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            for _, fut in batch:
                fut.set_result(None)

    async def write(self, trace: Trace) -> None:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((trace, fut))
        await asyncio.wrap_future(fut)

    def write_sync(self, trace: Trace) -> None:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((trace, fut))
        fut.result()

    def query(self, *, since: float | None = None, until: float | None = None,
              tier: str | None = None, key_id: str | None = None,
              escalated: bool | None = None, errors: bool | None = None,
              limit: int | None = None, newest_first: bool = False) -> Iterator[Trace]:
        where: list[str] = []
        args: list[object] = []
        for cond, value in (("time >= ?", since), ("time < ?", until), ("tier = ?", tier),
                            ("key_id = ?", key_id)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if escalated is not None:
            where.append("escalated = ?")
            args.append(int(escalated))
        if errors is not None:
            where.append("status != 'ok'" if errors else "status = 'ok'")
        sql = f"SELECT {', '.join(COLUMNS)} FROM traces"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id" if newest_first else " ORDER BY time, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        reader = sqlite3.connect(self.path)
        try:
            for row in reader.execute(sql, args):
                yield from_row(row)
        finally:
            reader.close()

    def get(self, trace_id: str) -> Trace | None:
        reader = sqlite3.connect(self.path)
        try:
            row = reader.execute(f"SELECT {', '.join(COLUMNS)} FROM traces WHERE id = ?",
                                 (trace_id,)).fetchone()
        finally:
            reader.close()
        return from_row(row) if row else None

    def count(self) -> int:
        reader = sqlite3.connect(self.path)
        try:
            return int(reader.execute("SELECT COUNT(*) FROM traces").fetchone()[0])
        finally:
            reader.close()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._conn.close()
