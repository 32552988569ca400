"""What a server keeps of the prompt registry, so that a request naming a prompt costs
no store round trip in the common case.

Versions never change, so they are kept forever once read. Labels move, so where a label
points is kept for ``label_ttl_s``; the first request after that reads it again (one
read, shared by every request waiting on it), so a label moved on any replica, or with
the CLI, is served everywhere within ``label_ttl_s`` plus one read. When the store does
not answer (an error, or no answer within ``timeout_s``), what was last read is served
and the store is asked again at most every ``retry_s``: an outage costs nothing to a
prompt already in use. A prompt never read before cannot be served then: a 503.

The store is read on one thread of its own, with one connection, opened on first use
and again after a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rung.errors import NotFound, StoreUnavailable
from rung.prompts.model import PromptVersion, Target
from rung.store.prompts import PromptStore

log = logging.getLogger("rung.prompts")

LABEL_TTL_S = 5.0
TIMEOUT_S = 2.0
RETRY_S = 1.0
_DOWN = "The prompt registry is not answering, and this prompt is not cached here yet. " \
    "Try again shortly."
_T = TypeVar("_T")


@dataclass
class _Label:
    target: Target
    read: float  # monotonic time of the read it came from
    retry: float = 0.0  # while the store is down: not before this


class PromptCache:
    """Versions forever, labels for ``label_ttl_s``, the last good read during an
    outage. ``open_store`` makes a fresh connection to the registry."""

    def __init__(self, open_store: Callable[[], PromptStore], *,
                 label_ttl_s: float = LABEL_TTL_S, timeout_s: float = TIMEOUT_S,
                 retry_s: float = RETRY_S) -> None:
        self._open = open_store
        self.label_ttl_s, self._timeout, self._retry = label_ttl_s, timeout_s, retry_s
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rung-prompts")
        self._store: PromptStore | None = None
        self._versions: dict[tuple[str, int], PromptVersion] = {}
        self._labels: dict[tuple[str, str], _Label] = {}
        self._reading: dict[tuple[str, str], asyncio.Future[Target]] = {}
        self.memo: dict[tuple[str, int], Any] = {}  # per version, what apply derives once
        self.reads = 0  # store reads made (for tests and the benchmark)
        self.stale = 0  # requests served from the cache while the store was down

    def _call(self, fn: Callable[[PromptStore], _T]) -> _T:
        """On the registry's thread."""
        if self._store is None:
            self._store = self._open()
        try:
            return fn(self._store)
        except NotFound:
            raise
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                store.close()

    async def _read(self, fn: Callable[[PromptStore], _T]) -> _T:
        self.reads += 1
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, self._call, fn)
        return await asyncio.wait_for(fut, self._timeout)

    async def version(self, name: str, version: int) -> PromptVersion:
        v = self._versions.get((name, version))
        if v is not None:
            return v
        try:
            v = await self._read(lambda s: s.version(name, version))
        except NotFound:
            raise
        except Exception as exc:
            log.warning("prompt registry read failed: %s", exc)
            raise StoreUnavailable(_DOWN) from exc
        self._versions[(name, version)] = v
        return v

    async def target(self, name: str, label: str) -> Target:
        """Where ``label`` points, at most ``label_ttl_s`` old (older while the store is
        down)."""
        key = (name, label)
        held = self._labels.get(key)
        now = time.monotonic()
        if held is not None and (now - held.read < self.label_ttl_s or now < held.retry):
            if now - held.read >= self.label_ttl_s:
                self.stale += 1
            return held.target
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._refresh(name, label))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        try:
            return await asyncio.shield(reading)
        except NotFound:
            raise
        except Exception as exc:
            if held is None:
                raise StoreUnavailable(_DOWN) from exc
            self.stale += 1
            return held.target

    async def _refresh(self, name: str, label: str) -> Target:
        key = (name, label)
        try:
            target = await self._read(lambda s: s.target(name, label))
        except NotFound:
            self._labels.pop(key, None)  # moved away or deleted: say so, do not serve it
            raise
        except Exception as exc:
            held = self._labels.get(key)
            if held is not None:
                held.retry = time.monotonic() + self._retry
            log.warning("prompt registry read failed (serving cached labels): %s",
                        exc or type(exc).__name__)
            raise
        self._labels[key] = _Label(target, time.monotonic())
        return target

    def forget(self, name: str, label: str | None = None) -> None:
        """Drop cached labels of a prompt (this replica moved one: serve it now)."""
        for key in [k for k in self._labels if k[0] == name and label in (None, k[1])]:
            del self._labels[key]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a read hung on a dead store: leave it
            self._pool.submit(self._drop).result(timeout=self._timeout + 1)
        self._pool.shutdown(wait=False)

    def stats(self) -> dict[str, Any]:
        return {"versions": len(self._versions), "labels": len(self._labels),
                "reads": self.reads, "stale": self.stale}
