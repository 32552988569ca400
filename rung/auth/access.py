"""The server's gate: who is calling (401/403), and may they now (429).

Neither waits on a database per request when it can help it. On a SQLite store a key
looked up is kept in memory for ``KEY_TTL_S`` (unknown secrets too, so a client retrying
a wrong key costs nothing): a revoked key stops working at most ``KEY_TTL_S`` (1 s) after
``rung keys revoke``; a new key works at once (its secret was never seen before); limits
are counted in this process and spend for budgets is read in a thread (see
:mod:`rung.auth.limits`). On a Postgres store, which several replicas share, every key is
mirrored in memory and reloaded within 0.2 s of a change, and limits are counted in
Postgres, once for all replicas (see :mod:`rung.auth.shared`).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from rung.auth.keys import ApiKey, KeyStore, PostgresKeyStore, key_hash
from rung.auth.limits import KeyLimits, Limiter
from rung.errors import AuthError, Forbidden
from rung.store.base import is_postgres, require_psycopg, sqlite_path

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
KEY_TTL_S = 1.0  # the longest a revoked key keeps working in a running server
KEY_CACHE_SIZE = 4096  # keys remembered, least recently used dropped first


def auth_required(mode: str, host: str) -> bool:
    """``auto``: keys are required unless the server binds only to loopback."""
    return mode == "required" or (mode == "auto" and host not in LOOPBACK)


class Access:
    """``store``: a SQLite file, or a store URL (``sqlite:///PATH``, ``postgresql://...``)."""

    def __init__(self, store: Path | str, *, key_ttl_s: float | None = None) -> None:
        self._ttl = KEY_TTL_S if key_ttl_s is None else key_ttl_s
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []
        self.limiter: KeyLimits
        if isinstance(store, str) and is_postgres(store):
            require_psycopg()
            from rung.auth.shared import KeyMirror, SharedLimiter

            self.keys: KeyStore = PostgresKeyStore(store)  # migrates, if nobody has yet
            mirror = KeyMirror(store)
            shared = SharedLimiter(store, keys=mirror.by_id)
            self._mirror: Callable[[str], ApiKey | None] | None = mirror.lookup_hash
            self.limiter = shared
            self._closers += [shared.close, mirror.close, self.keys.close]
            return
        path = sqlite_path(store) if isinstance(store, str) else store
        self.keys = KeyStore(path)
        self._mirror = None
        # Spend is summed on its own connection, in its own thread: a long read there
        # never holds the connection that key lookups use.
        spend_store = KeyStore(path)
        spend_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rung-spend")
        self.limiter = Limiter(spend_store.spent_since, run=spend_thread.submit)
        self._closers += [lambda: spend_thread.shutdown(wait=True, cancel_futures=True),
                          spend_store.close, self.keys.close]

    def lookup(self, secret: str) -> ApiKey | None:
        """The key with this secret as of at most ``KEY_TTL_S`` ago; None when unknown.
        One indexed read per key per TTL (7 us), none for a key seen within it."""
        digest, now = key_hash(secret), time.monotonic()
        if self._mirror is not None:
            return self._mirror(digest)
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None and now - hit[0] < self._ttl:
                self._cache.move_to_end(digest)
                return hit[1]
        key = self.keys.lookup_hash(digest)
        with self._cache_lock:
            self._cache[digest] = (now, key)
            self._cache.move_to_end(digest)
            while len(self._cache) > KEY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return key

    def authenticate(self, authorization: str | None, *, admin: bool = False) -> ApiKey:
        if not authorization:
            raise AuthError("You didn't provide an API key. Send 'Authorization: Bearer "
                            "<key>' (create one with `rung keys create`).")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthError("Malformed Authorization header: expected 'Bearer <key>'.")
        key = self.lookup(secret.strip())
        if key is None:
            raise AuthError("Incorrect API key provided.")
        if key.revoked is not None:
            raise AuthError("This API key has been revoked.", code="revoked_api_key")
        if admin and not key.admin:
            raise Forbidden("This endpoint needs an admin key.")
        return key

    async def admit(self, key: ApiKey) -> None:
        """Raise RateLimited, or count the request in (StoreUnavailable: cannot tell)."""
        await self.limiter.enter(key)

    def close(self) -> None:
        for close in self._closers:
            close()
