"""Retries and a circuit breaker around an upstream backend.

Retries: a retryable failure (connection refused or reset, timeout, 429, 5xx) raised
before the first chunk is retried with full-jitter exponential backoff; once any text
has streamed, nothing is retried (the client already has part of an answer).

Circuit breaker, per upstream: ``failures`` failed calls within ``window_s`` open it; while
open every call fails at once (BackendUnavailable), so the cascade moves to the next
tier without waiting; after ``cooldown_s`` one probe is let through (half-open); its
success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

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

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        attempt = 0
        while True:
            if not self.breaker.allow():
                raise BackendUnavailable(f"tier {self.name}: circuit breaker is open")
            started = False
            try:
                async for chunk in self.inner.stream(request):
                    started = True
                    yield chunk
            except BackendError as exc:
                self.breaker.failure()
                if started or not retryable(exc) or attempt >= self.retries:
                    raise
                attempt += 1
                delay = self._rng.uniform(0, self.backoff_s * 2 ** (attempt - 1))
                await self._sleep(delay)  # type: ignore[misc]
                continue
            self.breaker.success()
            return
