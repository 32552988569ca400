"""What every trace store shares: one writer thread that commits whatever is queued in
one batch (a write returns once its batch is committed), and the SQL of the filters.

Writes from the event loop are gathered on the loop first: every trace written in one
turn of the loop goes to the writer thread as one hand-off, and the whole batch is settled
back on the loop with one call. Per trace that costs a list append and a future; the
thread hops are per batch (at 32 concurrent requests, about one for ten traces).
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Callable

import orjson

from rung.store.responses import StoredResponse
from rung.store.trace import Trace


class Slot:
    """Where a store's ``commit`` says how one trace's write went."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def set_result(self, _: None) -> None:
        self.error = None

    def set_exception(self, exc: BaseException) -> None:
        self.error = exc


# What a store writes: traces, and responses kept for previous_response_id (committed in
# the same transactions, so keeping a response costs no commit of its own).
Row = Trace | StoredResponse
Item = tuple[Row, Slot]
# A hand-off: the items, and where to tell their waiters (a loop's futures, or an event).
_Entry = tuple[list[Item], "asyncio.AbstractEventLoop | None", "list[asyncio.Future[None]]",
               "threading.Event | None"]


class BatchWriter:
    """``commit(batch)`` runs on the writer thread and must settle every slot in the batch
    (set_result, or set_exception so that every waiter hears about a failure)."""

    def __init__(self, commit: Callable[[list[Item]], None], *, name: str) -> None:
        self._commit = commit
        self._queue: queue.Queue[_Entry | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        # Writes gathered on each event loop, not yet handed to the thread.
        self._pending: dict[asyncio.AbstractEventLoop,
                            tuple[list[Item], list[asyncio.Future[None]]]] = {}

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            entries = [entry]
            while True:  # everything queued meanwhile goes into the same commit
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                entries.append(nxt)
            try:
                self._commit([item for e in entries for item in e[0]])
            except BaseException as exc:  # noqa: BLE001 - a waiter must never hang
                for items, *_ in entries:
                    for _, slot in items:
                        slot.error = slot.error or exc
            for items, loop, futures, done in entries:
                if done is not None:
                    done.set()
                elif loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(_settle, items, futures)

    async def write(self, trace: Row) -> None:
        """From the event loop: return once the trace is committed."""
        await self.write_soon(trace)

    def write_soon(self, trace: Row) -> asyncio.Future[None]:
        """From the event loop: a future done once the trace is committed (what the
        server awaits: a future, unlike a coroutine, is shielded without a task)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = ([], [])
                loop.call_soon(self._hand_off, loop)
            pending[0].append((trace, Slot()))
            pending[1].append(fut)
        return fut

    def _hand_off(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:  # close() may hand off from another thread, then stop the thread
            pending = self._pending.pop(loop, None)
            if pending is not None:
                self._queue.put((pending[0], loop, pending[1], None))

    def write_sync(self, trace: Row) -> None:
        slot, done = Slot(), threading.Event()
        self._queue.put(([(trace, slot)], None, [], done))
        done.wait()
        if slot.error is not None:
            raise slot.error

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._lock:
            for loop in list(self._pending):  # gathered in a loop's turn, not handed off
                items, futures = self._pending.pop(loop)
                self._queue.put((items, loop, futures, None))
            self._queue.put(None)
        self._thread.join(timeout=30)


def _settle(items: list[Item], futures: list[asyncio.Future[None]]) -> None:
    for (_, slot), fut in zip(items, futures, strict=True):
        if fut.done():
            continue
        if slot.error is None:
            fut.set_result(None)
        else:
            fut.set_exception(slot.error)


def json_text(value: object) -> str:
    """A JSON column's text: orjson (20x faster than json.dumps on a route), and the
    standard library for what orjson refuses (a lone surrogate, a non-string key)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


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
