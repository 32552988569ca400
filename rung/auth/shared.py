"""Keys and limits that replicas on one Postgres share.

:class:`KeyMirror`: every replica holds every key in memory (by hash and by id), so
authenticating never waits on the network. A trigger counts changes to ``api_keys`` in
``key_epoch``; the mirror reads that one number every ``POLL_S`` and reloads the keys
when it moved, so a revoked key is refused, and a new key works, on every replica within
``POLL_S`` plus one reload (measured: tests/auth/test_replicas.py). A secret not in the
copy (a key made since the last reload, or a wrong one) costs one indexed read, bounded
to ``MISS_TIMEOUT_S`` and remembered for a second, so a new key works at once. A mirror
that has not heard from Postgres for ``STALE_S`` refuses (503) rather than trust what it
last saw.

:class:`SharedLimiter`: a request of a key with limits is admitted by one statement,
``rung_admit`` (migration 7 in :mod:`rung.store.postgres`), which holds the key's row lock
while it checks the last minute and the spend and counts the request in, so N replicas
together admit exactly ``rpm`` requests per 60 s. A finished request charges its tokens
and cost with ``rung_charge``. The window runs on Postgres's clock, one clock for every
replica. Calls run on a few threads, each with its own connection, and each waits at most
``TIMEOUT_S`` (queue included): an unreachable Postgres is a 503 ``store_unavailable``,
never a hung request. A call that times out while Postgres is in fact still working on it
may count a request that was refused; a call still queued when its time is up never runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rung.auth.access import KEY_TTL_S
from rung.auth.keys import ApiKey, PostgresKeyStore
from rung.auth.limits import refusal
from rung.errors import AuthError, ConfigError, StoreUnavailable

log = logging.getLogger("rung.auth")

POLL_S = 0.2  # how often a replica asks whether any key changed
STALE_S = 5.0  # a mirror this long without an answer from Postgres refuses requests
TIMEOUT_S = 2.0  # the longest a request waits on the shared limiter
MISS_TIMEOUT_S = 0.5  # the longest an unknown secret's lookup may hold the event loop
RELOAD_TIMEOUT_S = 10.0  # the longest a reload of every key may take (0.8 s for 100k)
_KEYS_DOWN = "API keys cannot be checked: the key store is not answering. Try again shortly."
_LIMITS_DOWN = "Rate limits cannot be checked: the key store is not answering. Try again " \
    "shortly."
MISSES = 4096  # unknown secrets remembered (for KEY_TTL_S), oldest dropped first
WORKERS = 4  # threads (and connections) per replica for the shared limiter


def bounded(url: str, timeout_s: float) -> str:
    """``url`` with libpq timeouts: connecting, each statement, and unacknowledged sends,
    so that no thread of ours waits on Postgres for long."""
    from psycopg import conninfo

    p = conninfo.conninfo_to_dict(url)
    p.setdefault("connect_timeout", max(2, math.ceil(timeout_s)))  # libpq's minimum is 2
    p.setdefault("tcp_user_timeout", int(timeout_s * 2000))
    p["options"] = f"{p.get('options') or ''} -c statement_timeout={int(timeout_s * 1000)}"
    return conninfo.make_conninfo("", **p)


def limited(key: ApiKey) -> bool:
    return any(v is not None for v in (key.rpm, key.tpm, key.daily_budget,
                                       key.monthly_budget))


class KeyMirror:
    """Every key, in memory, at most ``POLL_S`` plus a reload behind Postgres. Two
    connections: the polling thread's, whose reload may take its time (0.08 s per 10k
    keys), and the one an unknown secret is looked up on, bounded to ``MISS_TIMEOUT_S``;
    only the thread (re)connects."""

    def __init__(self, url: str, *, poll_s: float = POLL_S, stale_s: float = STALE_S) -> None:
        self._urls = bounded(url, RELOAD_TIMEOUT_S), bounded(url, MISS_TIMEOUT_S)
        self._poll_s, self._stale_s = poll_s, stale_s
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._poller: PostgresKeyStore | None = None
        self._reader: PostgresKeyStore | None = None
        self._reader_failed = False
        self._epoch: int | None = None
        self._by_hash: dict[str, ApiKey] = {}
        self._by_id: dict[str, ApiKey] = {}
        self._heard = 0.0
        self._refresh()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rung-keys", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        if self._reader is None or self._reader_failed:
            self._close(self._reader)
            self._reader = PostgresKeyStore(self._urls[1], migrate=False)
            self._reader_failed = False
        if self._poller is None:
            self._poller = PostgresKeyStore(self._urls[0], migrate=False)
        row = self._poller._execute("SELECT n FROM key_epoch").fetchone()
        self._heard = time.monotonic()
        epoch = int(row[0])
        if epoch != self._epoch:  # read before the keys: a change after it moves it again
            by_hash = self._poller.all_keys()
            self._by_hash, self._by_id = by_hash, {k.id: k for k in by_hash.values()}
            self._epoch = epoch

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._poll_s):
            try:
                self._refresh()
            except Exception as exc:  # noqa: BLE001 - keep polling; lookups go stale
                if not failing:
                    log.warning("cannot reload API keys from Postgres: %s", exc)
                failing = True
                self._close(self._poller)
                self._poller = None
                continue
            if failing:
                log.warning("API keys reloaded from Postgres again")
                failing = False

    @staticmethod
    def _close(store: PostgresKeyStore | None) -> None:
        if store is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                store.close()

    def lookup_hash(self, digest: str) -> ApiKey | None:
        if time.monotonic() - self._heard > self._stale_s:
            raise StoreUnavailable(_KEYS_DOWN)
        key = self._by_hash.get(digest)
        if key is not None:
            return key
        now = time.monotonic()
        if now - self._misses.get(digest, -KEY_TTL_S) < KEY_TTL_S:
            return None
        reader = self._reader
        if reader is None or self._reader_failed:
            raise StoreUnavailable(_KEYS_DOWN)
        try:
            key = reader.lookup_hash(digest)
        except Exception as exc:
            self._reader_failed = True  # the polling thread reconnects it
            raise StoreUnavailable(_KEYS_DOWN) from exc
        if key is None:
            self._misses[digest] = now
            while len(self._misses) > MISSES:
                self._misses.popitem(last=False)
        return key

    def by_id(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._poll_s + RELOAD_TIMEOUT_S * 2)
        for store in (self._poller, self._reader):
            self._close(store)


class SharedLimiter:
    """:class:`rung.auth.limits.KeyLimits` over Postgres: one count for every replica."""

    def __init__(self, url: str, *, keys: Callable[[str], ApiKey | None],
                 workers: int = WORKERS, timeout_s: float = TIMEOUT_S) -> None:
        self._url = bounded(url, timeout_s)
        self._keys = keys
        self._timeout = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="rung-limits")
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            from rung.store.postgres import connect

            conn = connect(self._url)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _call(self, deadline: float, sql: str, args: tuple[object, ...]) -> Any:
        """In a pool thread. A job whose caller has stopped waiting is not run (it would
        count a request that was refused); a lost connection is retried once, fresh."""
        import psycopg

        for attempt in (1, 2):
            if time.monotonic() > deadline:
                raise TimeoutError("gave up before the call started")
            conn = self._conn()
            try:
                return conn.execute(sql, args).fetchone()
            except psycopg.OperationalError:
                if attempt == 2 or not conn.closed:
                    raise
                log.warning("shared limiter: connection lost; reconnecting")
        raise AssertionError("unreachable")

    async def _run(self, sql: str, args: tuple[object, ...]) -> Any:
        import psycopg

        deadline = time.monotonic() + self._timeout
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._call, deadline,
                                                         sql, args)
        try:
            return await asyncio.wait_for(fut, self._timeout)
        except (TimeoutError, psycopg.Error, ConfigError) as exc:
            log.warning("shared limiter: %s", str(exc).strip().splitlines()[-1]
                        if str(exc).strip() else type(exc).__name__)
            raise StoreUnavailable(_LIMITS_DOWN) from exc

    async def enter(self, key: ApiKey, *, now: float | None = None) -> None:
        """``now`` (seconds since the epoch) is for tests; by default Postgres's clock."""
        if not limited(key):
            return
        verdict, lim, retry = await self._run("SELECT * FROM rung_admit(%s, %s)",
                                              (key.id, now))
        if verdict == "ok":
            return
        if verdict == "revoked":
            raise AuthError("This API key has been revoked.", code="revoked_api_key")
        if verdict == "unknown":
            raise AuthError("Incorrect API key provided.")
        raise refusal(verdict, lim, retry if retry is not None else 60.0)

    async def charge(self, key_id: str, *, tokens: int, cost: float,
                     now: float | None = None) -> None:
        """Never raises: the answer is already made; an unrecorded charge is logged."""
        key = self._keys(key_id)
        if key is not None and key.tpm is None and key.daily_budget is None \
                and key.monthly_budget is None:
            return
        try:
            await self._run("SELECT rung_charge(%s, %s, %s, %s)", (key_id, tokens, cost, now))
        except StoreUnavailable:
            log.warning("the usage of key %s (%d tokens, cost %g) was not recorded",
                        key_id, tokens, cost)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
