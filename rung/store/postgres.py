"""PostgreSQL trace store: the SQLite store's schema and promises, for several replicas.

Same schema and schema versions as ``rung.store.sqlite`` (a new migration goes into both),
with Postgres types: DOUBLE PRECISION for REAL, BOOLEAN for the flags, BIGINT for counts;
``messages``, ``route`` and ``tools`` stay JSON text, so they read back byte for byte as
written (``route::jsonb`` queries them). Migrations run under an advisory lock, so replicas that
start together migrate once. One writer thread batches everything queued while the
previous commit ran; ``await write()`` returns after its batch's COMMIT. Postgres text
cannot hold NUL, so NUL characters are stored as U+FFFD.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import conninfo

from rung.errors import ConfigError, StoreUnavailable
from rung.store import feedback as fb_sql
from rung.store import responses as resp_sql
from rung.store.batching import BatchWriter, Item, filter_sql, json_text
from rung.store.feedback import Feedback
from rung.store.responses import StoredResponse
from rung.store.sqlite import COLUMNS
from rung.store.trace import Trace

log = logging.getLogger("rung.store.postgres")

# Version 7: what replicas share to enforce a key's limits together (rung.auth.shared).
# key_window holds the last minute of a key's requests (requests = 1) and tokens; key_spend
# one row per key and span (day, month), seeded once per span from the key's traces;
# key_epoch counts changes to api_keys, so replicas reload their copy of the keys only when
# it moves. rung_admit and rung_charge each run as one statement, holding the key's row
# lock, so a check and its count are atomic across replicas; each statement inside sees
# what the previous holder of the lock committed.
SHARED_LIMITS = """
CREATE TABLE key_window (
    key_id TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    requests INTEGER NOT NULL,
    tokens BIGINT NOT NULL
);
CREATE INDEX key_window_key ON key_window(key_id, time);
CREATE TABLE key_spend (
    key_id TEXT NOT NULL,
    span TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    spent DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key_id, span)
);
CREATE TABLE key_epoch (n BIGINT NOT NULL);
INSERT INTO key_epoch VALUES (0);
CREATE FUNCTION rung_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE key_epoch SET n = n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION rung_keys_changed();
CREATE FUNCTION rung_spend(p_key TEXT, p_span TEXT, p_since DOUBLE PRECISION,
                           p_add DOUBLE PRECISION) RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    v_since DOUBLE PRECISION;
    v_spent DOUBLE PRECISION;
BEGIN
    SELECT since, spent INTO v_since, v_spent FROM key_spend
        WHERE key_id = p_key AND span = p_span;
    IF v_since IS DISTINCT FROM p_since THEN  -- a new span: start from the stored traces
        SELECT COALESCE(SUM(cost), 0) INTO v_spent FROM traces
            WHERE key_id = p_key AND time >= p_since;
        INSERT INTO key_spend VALUES (p_key, p_span, p_since, v_spent + p_add)
            ON CONFLICT (key_id, span) DO UPDATE SET since = EXCLUDED.since,
                                                     spent = EXCLUDED.spent;
    ELSIF p_add <> 0 THEN
        UPDATE key_spend SET spent = spent + p_add WHERE key_id = p_key AND span = p_span;
    END IF;
    RETURN v_spent + p_add;
END $$;
CREATE FUNCTION rung_admit(p_key TEXT, p_now DOUBLE PRECISION, OUT verdict TEXT,
                           OUT lim DOUBLE PRECISION, OUT retry_after DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    v_now DOUBLE PRECISION;
    v_utc TIMESTAMP;
    v_requests BIGINT;
    v_first_request DOUBLE PRECISION;
    v_tokens BIGINT;
    v_first_token DOUBLE PRECISION;
BEGIN
    SELECT * INTO k FROM api_keys WHERE id = p_key FOR NO KEY UPDATE;
    -- the time is read once the lock is held: a request is stamped when it is counted
    v_now := COALESCE(p_now, extract(epoch FROM clock_timestamp()));
    v_utc := to_timestamp(v_now) AT TIME ZONE 'UTC';
    IF NOT FOUND THEN
        verdict := 'unknown';
        RETURN;
    END IF;
    IF k.revoked IS NOT NULL THEN
        verdict := 'revoked';
        RETURN;
    END IF;
    DELETE FROM key_window WHERE key_id = p_key AND time <= v_now - 60;
    SELECT COALESCE(SUM(requests), 0), MIN(time) FILTER (WHERE requests > 0),
           COALESCE(SUM(tokens), 0), MIN(time) FILTER (WHERE tokens > 0)
        INTO v_requests, v_first_request, v_tokens, v_first_token
        FROM key_window WHERE key_id = p_key;
    IF k.rpm IS NOT NULL AND v_requests >= k.rpm THEN
        verdict := 'rpm';
        lim := k.rpm;
        retry_after := v_first_request + 60 - v_now;
    ELSIF k.tpm IS NOT NULL AND v_tokens >= k.tpm THEN
        verdict := 'tpm';
        lim := k.tpm;
        retry_after := v_first_token + 60 - v_now;
    ELSIF k.daily_budget IS NOT NULL AND rung_spend(
            p_key, 'day', extract(epoch FROM date_trunc('day', v_utc)), 0) >= k.daily_budget
    THEN
        verdict := 'day';
        lim := k.daily_budget;
        retry_after := extract(epoch FROM date_trunc('day', v_utc) + interval '1 day') - v_now;
    ELSIF k.monthly_budget IS NOT NULL AND rung_spend(
            p_key, 'month', extract(epoch FROM date_trunc('month', v_utc)), 0)
            >= k.monthly_budget THEN
        verdict := 'month';
        lim := k.monthly_budget;
        retry_after := extract(epoch FROM date_trunc('month', v_utc) + interval '1 month')
                       - v_now;
    ELSE
        INSERT INTO key_window VALUES (p_key, v_now, 1, 0);
        verdict := 'ok';
    END IF;
END $$;
CREATE FUNCTION rung_charge(p_key TEXT, p_tokens BIGINT, p_cost DOUBLE PRECISION,
                            p_now DOUBLE PRECISION) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    v_now DOUBLE PRECISION;
    v_utc TIMESTAMP;
BEGIN
    SELECT * INTO k FROM api_keys WHERE id = p_key FOR NO KEY UPDATE;
    v_now := COALESCE(p_now, extract(epoch FROM clock_timestamp()));
    v_utc := to_timestamp(v_now) AT TIME ZONE 'UTC';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF k.tpm IS NOT NULL AND p_tokens > 0 THEN
        INSERT INTO key_window VALUES (p_key, v_now, 0, p_tokens);
    END IF;
    IF k.daily_budget IS NULL AND k.monthly_budget IS NULL THEN
        DELETE FROM key_spend WHERE key_id = p_key;  -- a budget set later reads the traces
    ELSE
        PERFORM rung_spend(p_key, 'day', extract(epoch FROM date_trunc('day', v_utc)), p_cost);
        PERFORM rung_spend(p_key, 'month', extract(epoch FROM date_trunc('month', v_utc)),
                           p_cost);
    END IF;
END $$;
"""

# Append-only, and version for version the same schema as rung.store.sqlite.MIGRATIONS.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE traces (
        id TEXT PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        tier TEXT,
        key_id TEXT,
        escalated BOOLEAN NOT NULL,
        stream BOOLEAN NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        ttft_ms DOUBLE PRECISION,
        cost DOUBLE PRECISION NOT NULL,
        score DOUBLE PRECISION,
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
        created DOUBLE PRECISION NOT NULL,
        revoked DOUBLE PRECISION,
        admin BOOLEAN NOT NULL,
        rpm BIGINT,
        tpm BIGINT,
        daily_budget DOUBLE PRECISION,
        monthly_budget DOUBLE PRECISION
    );
    CREATE INDEX traces_key ON traces(key_id, time);
    """,
    """
    ALTER TABLE traces ADD COLUMN tools TEXT;
    """,
    """
    ALTER TABLE api_keys ADD COLUMN tools_allow TEXT;
    ALTER TABLE api_keys ADD COLUMN tools_deny TEXT;
    """,
    """
    CREATE TABLE feedback (
        trace_id TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        comment TEXT,
        key_id TEXT,
        source TEXT NOT NULL
    );
    CREATE INDEX feedback_trace ON feedback(trace_id);
    CREATE INDEX feedback_time ON feedback(time);
    """,
    """
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        key_id TEXT,
        body TEXT NOT NULL,
        turns TEXT NOT NULL
    );
    CREATE INDEX responses_time ON responses(time);
    """,
    SHARED_LIMITS,
    # Version 8: the prompt registry (rung.store.prompts).
    """
    CREATE TABLE prompt_versions (
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        messages TEXT NOT NULL,
        variables TEXT NOT NULL,
        config TEXT NOT NULL,
        message TEXT NOT NULL,
        author TEXT,
        created DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE prompt_labels (
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        target TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (name, label)
    );
    CREATE TABLE prompt_label_moves (
        name TEXT NOT NULL,
        label TEXT NOT NULL,
        n BIGINT NOT NULL,
        target TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
        author TEXT,
        PRIMARY KEY (name, label, n)
    );
    """,
)

# pg_advisory_lock key: the first 8 bytes of sha256(b"rung.store.migrate"), a signed int64.
MIGRATE_LOCK = -0x7278_03DB_B399_10AA
_JSON = {"messages", "route", "tools"}
_INSERT = (f"INSERT INTO traces ({', '.join(COLUMNS)}) VALUES "
           f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id"))


def describe(url: str) -> str:
    """``user@host:port/db`` for messages: never the password."""
    try:
        p = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable Postgres URL"
    return f"{p.get('user', '')}@{p.get('host', '')}:{p.get('port', '')}/{p.get('dbname', '')}"


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """Autocommit: every transaction is explicit. A host that never answers fails after
    ``connect_timeout`` seconds (10 unless the URL says otherwise), not minutes."""
    try:
        params = conninfo.conninfo_to_dict(url)
        params.setdefault("connect_timeout", 10)
        return psycopg.connect(conninfo.make_conninfo("", **params), autocommit=True)
    except psycopg.Error as exc:
        raise ConfigError(f"cannot open the Postgres trace store {describe(url)}: "
                          f"{str(exc).strip().splitlines()[-1]}") from exc


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply every migration not yet applied, holding an advisory lock so that replicas
    starting at once wait for each other; returns the schema version."""
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = (row[0] if row else None) or 0
        for i, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            with conn.transaction():  # Postgres DDL is transactional: all or nothing
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (i,))
            log.info("trace store migrated to schema version %d", i)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return len(MIGRATIONS)


def _text(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def to_row(t: Trace) -> tuple[Any, ...]:
    # getattr, not as_dict(): asdict deep-copies and was half the cost of a write.
    # JSON writes NUL as the escape \u0000, which a TEXT column holds fine.
    values = [getattr(t, c) for c in COLUMNS]
    return tuple(json_text(v) if c in _JSON and v is not None else _text(v)
                 for c, v in zip(COLUMNS, values, strict=True))


def from_row(row: tuple[Any, ...]) -> Trace:
    d = dict(zip(COLUMNS, row, strict=True))
    for c in _JSON:
        d[c] = json.loads(d[c]) if d[c] is not None else None
    d["route"] = d["route"] or {}
    return Trace(**d)


class PostgresStore:
    """``await write(trace)`` returns once the trace is committed. ``url`` is any libpq
    connection string (``postgresql://user:pw@host:port/db?sslmode=...``)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = connect(url)
        migrate(self._conn)
        self._writer = BatchWriter(self._commit, name="rung-traces-pg")
        self.write, self.write_soon = self._writer.write, self._writer.write_soon
        self.write_sync = self._writer.write_sync

    def __repr__(self) -> str:
        return f"PostgresStore({describe(self._url)!r})"

    def _commit(self, batch: list[Item]) -> None:
        try:
            self._insert(batch)
        except (psycopg.OperationalError, ConfigError):  # connection lost: reconnect, retry
            log.warning("trace store connection lost; reconnecting", exc_info=True)
            self._reset()
            try:
                self._insert(batch)
            except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
                self._reset()
                err: Exception = exc
                if isinstance(exc, psycopg.OperationalError | ConfigError):  # a 503, not a 500
                    err = StoreUnavailable("The trace store is not answering, so the answer "
                                           "could not be kept. Try again shortly.")
                    err.__cause__ = exc
                for _, fut in batch:
                    fut.set_exception(err)
                return
        except Exception as exc:  # noqa: BLE001 - a bad trace fails alone, not its batch
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:
                self._commit([one])
            return
        for _, fut in batch:
            fut.set_result(None)

    def _insert(self, batch: list[Item]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
        with self._conn.transaction(), self._conn.cursor() as cur:
            traces = [to_row(t) for t, _ in batch if isinstance(t, Trace)]
            kept = [resp_sql.to_row(r) for r, _ in batch if isinstance(r, StoredResponse)]
            if traces:
                cur.executemany(_INSERT, traces)
            if kept:
                cur.executemany(resp_sql.insert_sql("%s"), kept)

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def query(self, *, since: float | None = None, until: float | None = None,
              tier: str | None = None, key_id: str | None = None,
              escalated: bool | None = None, errors: bool | None = None,
              limit: int | None = None, newest_first: bool = False) -> Iterator[Trace]:
        where, args = filter_sql(mark="%s", since=since, until=until, tier=tier,
                                 key_id=key_id, escalated=escalated, errors=errors,
                                 limit=limit, newest_first=newest_first)
        sql = f"SELECT {', '.join(COLUMNS)} FROM traces{where}"
        reader = connect(self._url)
        try:
            # A named (server-side) cursor streams: an export never holds every row.
            with reader.transaction(), reader.cursor(name="rung_traces") as cur:
                cur.itersize = 2000
                cur.execute(sql, args)
                for row in cur:
                    yield from_row(row)
        finally:
            reader.close()

    def get(self, trace_id: str) -> Trace | None:
        with connect(self._url) as reader:
            row = reader.execute(f"SELECT {', '.join(COLUMNS)} FROM traces WHERE id = %s",
                                 (trace_id,)).fetchone()
        return from_row(row) if row else None

    def add_feedback(self, fb: Feedback) -> None:
        """Commit one feedback (from a worker thread; its own connection)."""
        with connect(self._url) as conn:
            conn.execute(fb_sql.insert_sql("%s"), tuple(_text(v) for v in fb_sql.to_row(fb)))

    def feedback(self, *, trace_id: str | None = None, since: float | None = None,
                 until: float | None = None) -> list[Feedback]:
        sql, args = fb_sql.select_sql("%s", trace_id=trace_id, since=since, until=until)
        with connect(self._url) as reader:
            return [fb_sql.from_row(r) for r in reader.execute(sql, args).fetchall()]

    def keep_response_soon(self, r: StoredResponse) -> asyncio.Future[None]:
        """From the event loop: a future done once the response is kept (it is committed
        with the traces written meanwhile)."""
        return self._writer.write_soon(r)

    def get_response(self, response_id: str) -> StoredResponse | None:
        with connect(self._url) as reader:
            row = reader.execute(resp_sql.select_sql("%s"), (response_id,)).fetchone()
        return resp_sql.from_row(row) if row else None

    def delete_response(self, response_id: str) -> bool:
        with connect(self._url) as conn:
            return conn.execute(resp_sql.delete_sql("%s"), (response_id,)).rowcount > 0

    def count(self) -> int:
        with connect(self._url) as reader:
            row = reader.execute("SELECT COUNT(*) FROM traces").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Flush every queued write, then close."""
        self._writer.close()
        self._reset()
