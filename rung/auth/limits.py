"""Per-key rate limits (requests and tokens per minute) and budgets (cost per UTC day
and month). Pure bookkeeping with the clock passed in; the server calls :meth:`admit`
before a request and :meth:`record` after it.

Counts live in this process (one process on a SQLite store); replicas on Postgres share
theirs through :class:`rung.auth.shared.SharedLimiter` instead. Budgets start from the
spend stored in traces, so a restart does not reset them: when a key with a budget
enters a day or a month here (its first request, or the first after midnight UTC), the
stored spend of that period is read once, through ``run`` (the server's runs it in a
thread: summing a busy key's month of traces takes 0.2 s per 100k traces, too long for
the event loop). Until that read returns the key is held to what this process counted,
so a budget can be overrun by the requests admitted during the read. Traces carry the
time their request started, so the read stops ``SETTLE_S`` before the key entered the
period: the request that made it enter is counted here, and must not be counted twice.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rung.auth.keys import ApiKey
from rung.errors import RateLimited

log = logging.getLogger("rung.auth")

WINDOW_S = 60.0
SETTLE_S = 1.0

# spent_since(key_id, since, until): the stored spend in [since, until)
SpentSince = Callable[[str, float, float], float]
Run = Callable[[Callable[[], None]], object]


class KeyLimits(Protocol):
    """What the server asks of a limiter, on the event loop, at the current time."""

    async def enter(self, key: ApiKey) -> None:
        """Raise RateLimited (with retry-after) or count the request in."""
        ...

    async def charge(self, key_id: str, *, tokens: int, cost: float) -> None:
        """Charge a finished request's tokens and cost to its key."""
        ...


def day_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))


def month_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def next_month(now: float) -> float:
    t = time.gmtime(now)
    y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(calendar.timegm((y, m, 1, 0, 0, 0)))


def refusal(limit: str, value: float, retry_after_s: float) -> RateLimited:
    """The 429 for a key over ``limit`` (``rpm``, ``tpm``, ``day``, ``month``)."""
    if limit == "rpm":
        return RateLimited(f"Rate limit reached: {int(value)} requests per minute.",
                           retry_after_s=retry_after_s)
    if limit == "tpm":
        return RateLimited(f"Rate limit reached: {int(value)} tokens per minute.",
                           retry_after_s=retry_after_s)
    span = "Daily" if limit == "day" else "Monthly"
    return RateLimited(f"{span} budget of {value} spent.", retry_after_s=retry_after_s,
                       code="budget_exceeded")


def _inline(job: Callable[[], None]) -> None:
    job()


@dataclass
class _Period:
    """A key's spend in one UTC day or month."""

    start: float = -1.0
    entered: float = 0.0  # when this process first saw the key in the period
    base: float | None = None  # stored spend before ``entered``; None until read
    reading: bool = False
    local: float = 0.0  # recorded here since ``entered``

    @property
    def spent(self) -> float:
        return (self.base or 0.0) + self.local


@dataclass
class _Usage:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    day: _Period = field(default_factory=_Period)
    month: _Period = field(default_factory=_Period)


class Limiter:
    def __init__(self, spent_since: SpentSince, *, run: Run = _inline) -> None:
        self._spent_since = spent_since
        self._run = run
        self._usage: dict[str, _Usage] = {}
        # Held briefly by admit/record and by a finished read; never during the read.
        self._lock = threading.RLock()

    def _get(self, key_id: str, now: float) -> _Usage:
        u = self._usage.setdefault(key_id, _Usage())
        if u.day.start != day_start(now):
            u.day = _Period(start=day_start(now), entered=now)
        if u.month.start != month_start(now):
            u.month = _Period(start=month_start(now), entered=now)
        while u.requests and u.requests[0] <= now - WINDOW_S:
            u.requests.popleft()
        while u.tokens and u.tokens[0][0] <= now - WINDOW_S:
            u.tokens.popleft()
        return u

    def _read_base(self, key_id: str, period: _Period) -> None:
        """Start reading the stored spend of ``period`` unless it is read or being read."""
        if period.base is not None or period.reading:
            return
        period.reading = True
        since, until = period.start, max(period.start, period.entered - SETTLE_S)

        def read() -> None:
            try:
                spent = self._spent_since(key_id, since, until)
            except Exception:
                log.exception("could not read the stored spend of key %s", key_id)
                with self._lock:
                    period.reading = False  # the key's next request tries again
                return
            with self._lock:  # a period that has since rolled over is no longer used
                period.base, period.reading = spent, False

        self._run(read)

    def admit(self, key: ApiKey, now: float) -> None:
        """Raise RateLimited (with retry-after) or count the request in."""
        with self._lock:
            u = self._get(key.id, now)
            if key.daily_budget is not None:
                self._read_base(key.id, u.day)
            if key.monthly_budget is not None:
                self._read_base(key.id, u.month)
            if key.rpm is not None and len(u.requests) >= key.rpm:
                raise refusal("rpm", key.rpm, u.requests[0] + WINDOW_S - now)
            used = sum(n for _, n in u.tokens)
            if key.tpm is not None and used >= key.tpm:
                raise refusal("tpm", key.tpm, u.tokens[0][0] + WINDOW_S - now)
            if key.daily_budget is not None and u.day.spent >= key.daily_budget:
                raise refusal("day", key.daily_budget, u.day.start + 86400 - now)
            if key.monthly_budget is not None and u.month.spent >= key.monthly_budget:
                raise refusal("month", key.monthly_budget, next_month(now) - now)
            u.requests.append(now)

    def record(self, key_id: str, *, tokens: int, cost: float, now: float) -> None:
        with self._lock:
            u = self._get(key_id, now)
            if tokens:
                u.tokens.append((now, tokens))
            u.day.local += cost
            u.month.local += cost

    async def enter(self, key: ApiKey) -> None:
        self.admit(key, time.time())

    async def charge(self, key_id: str, *, tokens: int, cost: float) -> None:
        self.record(key_id, tokens=tokens, cost=cost, now=time.time())
