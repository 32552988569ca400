"""API keys, stored as SHA-256 hashes beside the traces (the secret is shown once).

One set of SQL over either store: :class:`KeyStore` in the SQLite file,
:class:`PostgresKeyStore` in Postgres (where several replicas share them);
:func:`open_keys` picks by the store URL.

Keys are 256-bit random tokens, so a fast hash is enough: there is nothing to
brute-force that a slow hash would protect. A key may narrow the tools its requests can
offer (``tools_allow``/``tools_deny`` globs, JSON lists in the row; NULL: no narrowing),
on top of the gateway's ``[tools]`` lists.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rung.errors import ConfigError
from rung.store.base import is_postgres, require_psycopg, sqlite_path
from rung.store.sqlite import connect
from rung.tools.globs import allowed

PREFIX = "rk-"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    created: float
    revoked: float | None
    admin: bool
    rpm: int | None  # requests per minute
    tpm: int | None  # tokens per minute
    daily_budget: float | None  # cost per UTC day
    monthly_budget: float | None  # cost per UTC month
    tools_allow: tuple[str, ...] | None = None  # tool-name globs; None: any tool
    tools_deny: tuple[str, ...] | None = None  # tool-name globs, win over tools_allow

    def allows_tool(self, name: str) -> bool:
        """Whether this key's own lists let a request offer tool ``name`` (the gateway's
        ``[tools]`` lists apply as well: see ``rung.server.tools_wire.check_allowed``)."""
        return allowed(name, self.tools_allow, self.tools_deny or ())


def tool_globs(text: str) -> tuple[str, ...]:
    """``'get_*, search'`` -> ``('get_*', 'search')``: the CLI's comma-separated lists."""
    return tuple(g for g in (part.strip() for part in text.split(",")) if g)


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_COLS = ("id, name, created, revoked, admin, rpm, tpm, daily_budget, monthly_budget, "
         "tools_allow, tools_deny")
_MARKS = ", ".join("?" * len(_COLS.split(",")))


def _globs_in(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(json.loads(str(value)))


def _globs_out(globs: tuple[str, ...] | None) -> str | None:
    return None if globs is None else json.dumps(list(globs))


def _row(r: tuple[object, ...]) -> ApiKey:
    return ApiKey(id=str(r[0]), name=str(r[1]), created=float(r[2]),  # type: ignore[arg-type]
                  revoked=r[3], admin=bool(r[4]), rpm=r[5], tpm=r[6],  # type: ignore[arg-type]
                  daily_budget=r[7], monthly_budget=r[8],  # type: ignore[arg-type]
                  tools_allow=_globs_in(r[9]), tools_deny=_globs_in(r[10]))


class KeyStore:
    """Create, list, revoke and look up keys in the store's SQLite file."""

    _mark = "?"  # the driver's placeholder: every query below is written with ``?``

    def __init__(self, path: Path) -> None:
        self._conn: Any = connect(path)  # sqlite3 here, psycopg in PostgresKeyStore

    def _execute(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", self._mark), args)

    def create(self, name: str, *, admin: bool = False, rpm: int | None = None,
               tpm: int | None = None, daily_budget: float | None = None,
               monthly_budget: float | None = None,
               tools_allow: tuple[str, ...] | None = None,
               tools_deny: tuple[str, ...] | None = None) -> tuple[ApiKey, str]:
        """Returns the key and its secret; only the hash is stored."""
        for v, what in ((rpm, "rpm"), (tpm, "tpm"), (daily_budget, "daily budget"),
                        (monthly_budget, "monthly budget")):
            if v is not None and v < 0:
                raise ConfigError(f"{what} must not be negative")
        # An empty allow list would be a key that can offer no tool while looking like one
        # that restricts nothing; `tools_deny=("*",)` says that plainly.
        if tools_allow is not None and not tools_allow:
            raise ConfigError("tools allow list is empty: name at least one glob (deny '*' "
                              "to refuse every tool)")
        secret = PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id="key_" + secrets.token_hex(6), name=name, created=time.time(),
                     revoked=None, admin=admin, rpm=rpm, tpm=tpm, daily_budget=daily_budget,
                     monthly_budget=monthly_budget, tools_allow=tools_allow,
                     tools_deny=tools_deny or None)
        self._execute(
            f"INSERT INTO api_keys ({_COLS}, hash) VALUES ({_MARKS}, ?)",
            (key.id, key.name, key.created, None, admin, rpm, tpm, daily_budget,
             monthly_budget, _globs_out(key.tools_allow), _globs_out(key.tools_deny),
             key_hash(secret)))
        return key, secret

    def list(self) -> list[ApiKey]:
        return [_row(r) for r in self._execute(
            f"SELECT {_COLS} FROM api_keys ORDER BY created").fetchall()]

    def set_tools(self, key_id: str, *, allow: tuple[str, ...] | None | bool = False,
                  deny: tuple[str, ...] | None | bool = False) -> ApiKey:
        """Change an active key's tool lists: a tuple of globs sets a list, None clears it
        (no restriction), False leaves it as it is. A running server sees the change
        within 1 s."""
        if isinstance(allow, tuple) and not allow:
            raise ConfigError("tools allow list is empty: name at least one glob (deny '*' "
                              "to refuse every tool)")
        for column, value in (("tools_allow", allow), ("tools_deny", deny)):
            if value is False:
                continue
            cur = self._execute(
                f"UPDATE api_keys SET {column} = ? WHERE id = ? AND revoked IS NULL",
                (_globs_out(value if isinstance(value, tuple) else None), key_id))
            if cur.rowcount == 0:
                raise ConfigError(f"no active key with id {key_id}")
        r = self._execute(f"SELECT {_COLS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if r is None:
            raise ConfigError(f"no active key with id {key_id}")
        return _row(r)

    def revoke(self, key_id: str) -> None:
        cur = self._execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked "
                                 "IS NULL", (time.time(), key_id))
        if cur.rowcount == 0:
            raise ConfigError(f"no active key with id {key_id}")

    def lookup(self, secret: str) -> ApiKey | None:
        """The key with this secret, revoked or not; None when unknown."""
        return self.lookup_hash(key_hash(secret))

    def lookup_hash(self, digest: str) -> ApiKey | None:
        """The key whose secret has this :func:`key_hash`; None when unknown."""
        r = self._execute(f"SELECT {_COLS} FROM api_keys WHERE hash = ?",
                          (digest,)).fetchone()
        return _row(r) if r else None

    def spent_since(self, key_id: str, since: float, until: float | None = None) -> float:
        """The key's stored spend in traces from ``since`` (to before ``until``). Reads
        every trace of the key in the span: a busy key's month takes a noticeable time
        (0.2 s for 100k traces), so the server reads it in a thread."""
        sql = "SELECT COALESCE(SUM(cost), 0) FROM traces WHERE key_id = ? AND time >= ?"
        args: tuple[object, ...] = (key_id, since)
        if until is not None:
            sql, args = sql + " AND time < ?", (*args, until)
        r = self._execute(sql, args).fetchone()
        return float(r[0])

    def any_keys(self) -> bool:
        return self._execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def all_keys(self) -> dict[str, ApiKey]:
        """Every key by its hash (a replica's in-memory copy: :mod:`rung.auth.shared`)."""
        return {str(r[-1]): _row(r) for r in self._execute(
            f"SELECT {_COLS}, hash FROM api_keys").fetchall()}

    def close(self) -> None:
        self._conn.close()


class PostgresKeyStore(KeyStore):
    """The same keys in Postgres (schema migrated as the trace store's), for replicas."""

    _mark = "%s"

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        require_psycopg()
        from rung.store import postgres

        self._conn = postgres.connect(url)
        if migrate:
            postgres.migrate(self._conn)


def open_keys(url: str) -> KeyStore:
    """The key store at a store URL: ``sqlite:///PATH`` or ``postgresql://...``."""
    if is_postgres(url):
        return PostgresKeyStore(url)
    if url.startswith("sqlite:///"):
        return KeyStore(sqlite_path(url))
    raise ConfigError(f"unknown store URL {url!r}: expected sqlite:///PATH or postgresql://...")
