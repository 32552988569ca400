"""SQLite trace store: WAL, append-only migrations, one writer thread that batches.

A write returns only after its batch is committed, so the server acknowledges a request
only once its trace is durable; batching keeps that cheap under load (one commit for
everything queued while the previous commit ran).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rung.store import feedback as fb_sql
from rung.store import responses as resp_sql
from rung.store.batching import BatchWriter, Item, filter_sql, json_text
from rung.store.feedback import Feedback
from rung.store.responses import StoredResponse
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
    # What a tool-call step offered and called (ToolUse.as_dict()); NULL without tools.
    """
    ALTER TABLE traces ADD COLUMN tools TEXT;
    """,
    # A key's own tool-name globs (JSON lists); NULL: the key narrows nothing.
    """
    ALTER TABLE api_keys ADD COLUMN tools_allow TEXT;
    ALTER TABLE api_keys ADD COLUMN tools_deny TEXT;
    """,
    # What was said about an answer (POST /v1/feedback): rung.store.feedback.
    """
    CREATE TABLE feedback (
        trace_id TEXT NOT NULL,
        time REAL NOT NULL,
        score REAL NOT NULL,
        comment TEXT,
        key_id TEXT,
        source TEXT NOT NULL
    );
    CREATE INDEX feedback_trace ON feedback(trace_id);
    CREATE INDEX feedback_time ON feedback(time);
    """,
    # Responses kept for previous_response_id (POST /v1/responses): rung.store.responses.
    """
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        time REAL NOT NULL,
        key_id TEXT,
        body TEXT NOT NULL,
        turns TEXT NOT NULL
    );
    CREATE INDEX responses_time ON responses(time);
    """,
    # Nothing here: version 7 is Postgres's shared rate windows and spend counters
    # (rung.auth.shared); one SQLite process counts in memory (rung.auth.limits).
    "",
    # The prompt registry (rung.store.prompts): immutable versions, movable labels and
    # every move of a label (for rollback). messages, variables, config, target: JSON.
    """
    CREATE TABLE prompt_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        messages TEXT NOT NULL,
        variables TEXT NOT NULL,
        config TEXT NOT NULL,
        message TEXT NOT NULL,
        author TEXT,
        created REAL NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE prompt_labels (
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        target TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (name, label)
    );
    CREATE TABLE prompt_label_moves (
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        n INTEGER NOT NULL,
        target TEXT NOT NULL,
        time REAL NOT NULL,
        author TEXT,
        PRIMARY KEY (name, label, n)
    );
    """,
)

COLUMNS = ("id", "time", "model", "status", "tier", "key_id", "escalated", "stream",
           "input_tokens", "output_tokens", "latency_ms", "ttft_ms", "cost", "score",
           "prompt_hash", "messages", "response", "route", "error", "tools")
_JSON = {"messages", "route", "tools"}
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
    return tuple(json_text(v) if c in _JSON and v is not None else
                 int(v) if c in _BOOL else v for c, v in zip(COLUMNS, values, strict=True))


_INSERT = (f"INSERT OR REPLACE INTO traces ({', '.join(COLUMNS)}) VALUES "
           f"({', '.join('?' * len(COLUMNS))})")


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
        self._writer = BatchWriter(self._commit, name="rung-traces")
        self.write, self.write_soon = self._writer.write, self._writer.write_soon
        self.write_sync = self._writer.write_sync

    def _commit(self, batch: list[Item]) -> None:
        try:
            self._conn.execute("BEGIN")
            traces = [to_row(t) for t, _ in batch if isinstance(t, Trace)]
            kept = [resp_sql.to_row(r) for r, _ in batch if isinstance(r, StoredResponse)]
            if traces:
                self._conn.executemany(_INSERT, traces)
            if kept:
                self._conn.executemany(resp_sql.insert_sql("?"), kept)
            self._conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for _, fut in batch:
            fut.set_result(None)

    def query(self, *, since: float | None = None, until: float | None = None,
              tier: str | None = None, key_id: str | None = None,
              escalated: bool | None = None, errors: bool | None = None,
              limit: int | None = None, newest_first: bool = False) -> Iterator[Trace]:
        where, args = filter_sql(mark="?", since=since, until=until, tier=tier, key_id=key_id,
                                 escalated=escalated, errors=errors, limit=limit,
                                 newest_first=newest_first)
        reader = sqlite3.connect(self.path)
        try:
            for row in reader.execute(f"SELECT {', '.join(COLUMNS)} FROM traces{where}", args):
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

    def add_feedback(self, fb: Feedback) -> None:
        """Commit one feedback (from a worker thread; its own connection)."""
        conn = sqlite3.connect(self.path, timeout=5.0)
        try:
            with conn:
                conn.execute(fb_sql.insert_sql("?"), fb_sql.to_row(fb))
        finally:
            conn.close()

    def feedback(self, *, trace_id: str | None = None, since: float | None = None,
                 until: float | None = None) -> list[Feedback]:
        sql, args = fb_sql.select_sql("?", trace_id=trace_id, since=since, until=until)
        reader = sqlite3.connect(self.path)
        try:
            return [fb_sql.from_row(r) for r in reader.execute(sql, args)]
        finally:
            reader.close()

    def keep_response_soon(self, r: StoredResponse) -> asyncio.Future[None]:
        """From the event loop: a future done once the response is kept (it is committed
        with the traces written meanwhile)."""
        return self._writer.write_soon(r)

    def get_response(self, response_id: str) -> StoredResponse | None:
        reader = sqlite3.connect(self.path)
        try:
            row = reader.execute(resp_sql.select_sql("?"), (response_id,)).fetchone()
        finally:
            reader.close()
        return resp_sql.from_row(row) if row else None

    def delete_response(self, response_id: str) -> bool:
        conn = sqlite3.connect(self.path, timeout=5.0)
        try:
            with conn:
                return conn.execute(resp_sql.delete_sql("?"), (response_id,)).rowcount > 0
        finally:
            conn.close()

    def count(self) -> int:
        reader = sqlite3.connect(self.path)
        try:
            return int(reader.execute("SELECT COUNT(*) FROM traces").fetchone()[0])
        finally:
            reader.close()

    def close(self) -> None:
        self._writer.close()
        self._conn.close()
