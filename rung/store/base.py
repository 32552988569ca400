"""The trace-store interface and the one place a store URL becomes a store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rung.errors import ConfigError
from rung.store.feedback import Feedback
from rung.store.responses import StoredResponse
from rung.store.trace import Trace


class TraceStore(Protocol):
    async def write(self, trace: Trace) -> None:
        """From the event loop: return once the trace is durable."""
        ...

    def write_soon(self, trace: Trace) -> asyncio.Future[None]:
        """From the event loop: a future done once the trace is durable."""
        ...

    def write_sync(self, trace: Trace) -> None:
        """From any thread without a loop: return once the trace is durable."""
        ...

    def query(self, *, since: float | None = None, until: float | None = None,
              tier: str | None = None, key_id: str | None = None,
              escalated: bool | None = None, errors: bool | None = None,
              limit: int | None = None, newest_first: bool = False) -> Iterator[Trace]: ...

    def get(self, trace_id: str) -> Trace | None:
        """One trace by id (primary-key lookup)."""
        ...

    def add_feedback(self, fb: Feedback) -> None:
        """From a worker thread: return once the feedback is committed."""
        ...

    def feedback(self, *, trace_id: str | None = None, since: float | None = None,
                 until: float | None = None) -> list[Feedback]:
        """Feedback, oldest first: on one trace, or given in ``[since, until)``."""
        ...

    def keep_response_soon(self, r: StoredResponse) -> asyncio.Future[None]:
        """From the event loop: a future done once the response is kept."""
        ...

    def get_response(self, response_id: str) -> StoredResponse | None: ...

    def delete_response(self, response_id: str) -> bool:
        """Whether a kept response was deleted (False: there was none)."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/or/~/path`` -> a path; ``sqlite:////abs`` -> ``/abs``."""
    rest = url.removeprefix("sqlite:///")
    if not rest:
        raise ConfigError(f"store URL {url!r} has no path")
    return Path(rest).expanduser()


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def require_psycopg() -> None:
    """A one-line ConfigError when a postgresql:// store is used without the extra."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigError("a postgresql:// store needs psycopg: pip install "
                          "'rung[postgres]'") from exc


def open_store(url: str) -> TraceStore:
    if url.startswith("sqlite:///"):
        import sqlite3

        from rung.store.sqlite import SqliteStore

        path = sqlite_path(url)
        try:
            return SqliteStore(path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the trace store at {path}: {exc}") from exc
    if is_postgres(url):
        require_psycopg()
        from rung.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(f"unknown store URL {url!r}: expected sqlite:///PATH or postgresql://...")
