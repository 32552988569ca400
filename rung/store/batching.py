"""What every trace store shares: one writer thread that commits whatever is queued in
one batch (a write returns once its batch is committed), and the SQL of the filters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable

from rung.store.trace import Trace

Item = tuple[Trace, "concurrent.futures.Future[None]"]


class BatchWriter:
    """``commit(batch)`` runs on the writer thread and must resolve every future in the
    batch (set_result, or set_exception so that every waiter hears about a failure)."""

    def __init__(self, commit: Callable[[list[Item]], None], *, name: str) -> None:
        self._commit = commit
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
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
            self._commit(batch)

    def submit(self, trace: Trace) -> concurrent.futures.Future[None]:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((trace, fut))
        return fut

    async def write(self, trace: Trace) -> None:
        await asyncio.wrap_future(self.submit(trace))

    def write_sync(self, trace: Trace) -> None:
        self.submit(trace).result()

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)


def filter_sql(*, mark: str, since: float | None, until: float | None, tier: str | None,
               key_id: str | None, escalated: bool | None, errors: bool | None,
               limit: int | None, newest_first: bool) -> tuple[str, list[object]]:
    """``WHERE ... ORDER BY ... LIMIT ...`` for a traces query, with ``mark`` as the
    driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg)."""
    where: list[str] = []
    args: list[object] = []
    for column, op, value in (("time", ">=", since), ("time", "<", until), ("tier", "=", tier),
                              ("key_id", "=", key_id), ("escalated", "=", escalated)):
        if value is not None:
            where.append(f"{column} {op} {mark}")
            args.append(value)
    if errors is not None:
        where.append("status <> 'ok'" if errors else "status = 'ok'")
    sql = (" WHERE " + " AND ".join(where)) if where else ""
    sql += " ORDER BY time DESC, id" if newest_first else " ORDER BY time, id"
    if limit is not None:
        sql += f" LIMIT {mark}"
        args.append(int(limit))
    return sql, args
