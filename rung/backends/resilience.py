"""Retries and a circuit breaker around an upstream backend.

Retries: a retryable failure (connection refused or reset, timeout, 429, 5xx) raised
before the first chunk is retried with full-jitter exponential backoff; once any text
has streamed, nothing is retried (the client already has part of an answer).

Circuit breaker, per upstream: ``failures`` failed calls within ``window_s`` open it; while
open every call fails at once (BackendUnavailable), so the cascade moves to the next
tier without waiting; after ``cooldown_s`` one probe is let through (half-open); its
success closes the breaker, its failure opens it again.

Every call ends with a verdict, so a probe can never hold the half-open slot forever:

- the upstream finished (its stream ended, or it sent the chunk carrying
  ``finish_reason``, even if the caller stopped reading after that): a success;
- the backend raised anything (a BackendError or a bug such as a ValueError): a failure;
- the caller gave up before the first chunk (the tier's deadline, a client that left;
  seen here as a cancellation or an early ``aclose``): a failure, since the upstream
  did not start answering in the time it was given;
- the caller gave up mid-answer: no verdict. The upstream was answering, and a client
  that stops a generation must not open the breaker of a healthy upstream; a probe
  cut off this way frees the half-open slot, so the next call probes again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable

from rung.backends.base import Backend
from rung.errors import BackendError, BackendTimeout, BackendUnavailable, UpstreamError
from rung.types import ChatRequest, Chunk


def retryable(exc: BackendError) -> bool:
    if isinstance(exc, UpstreamError):
        return exc.retryable
    return isinstance(exc, BackendUnavailable | BackendTimeout)


class CircuitBreaker:
    """States: closed -> open (after failures) -> half-open (after cooldown) -> closed."""

    def __init__(self, *, failures: int, window_s: float, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.window_s, self.cooldown_s = failures, window_s, cooldown_s
        self._clock = clock
        self._recent: deque[float] = deque()
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._recent.clear()
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        now = self._clock()
        if self._probing or self._opened_at is not None:
            self._opened_at, self._probing = now, False
            return
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - self.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.failures:
            self._opened_at = now
            self._recent.clear()

    def release(self) -> None:
        """The probe ended without a verdict: the next call probes instead."""
        self._probing = False


class ResilientBackend:
    """Wraps a backend with retries and a circuit breaker; same interface."""

    def __init__(self, inner: Backend, *, retries: int, backoff_s: float,
                 breaker: CircuitBreaker, sleep: Callable[[float], object] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.retries, self.backoff_s = retries, backoff_s
        self.breaker = breaker
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def ready(self) -> bool:
        return self.inner.ready

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        attempt = 0
        while True:
            probe = self.breaker.state != "closed"  # if allowed, this call is the probe
            if not self.breaker.allow():
                raise BackendUnavailable(f"tier {self.name}: circuit breaker is open")
            started = finished = False
            chunks = self.inner.stream(request)
            try:
                async for chunk in chunks:
                    started = True
                    finished = finished or chunk.finish_reason is not None
                    yield chunk
            except BackendError as exc:
                self.breaker.failure()
                if started or not retryable(exc) or attempt >= self.retries:
                    raise
                attempt += 1
                delay = self._rng.uniform(0, self.backoff_s * 2 ** (attempt - 1))
                await self._sleep(delay)  # type: ignore[misc]
                continue
            except (asyncio.CancelledError, GeneratorExit):  # the caller gave up
                if finished:
                    self.breaker.success()
                elif not started:
                    self.breaker.failure()
                elif probe:
                    self.breaker.release()
                raise
            except BaseException:
                self.breaker.failure()
                raise
            finally:
                if isinstance(chunks, AsyncGenerator):
                    await chunks.aclose()  # stop the upstream's generation now, not at GC
            self.breaker.success()
            return
