"""Per-key rate limits (requests and tokens per minute) and budgets (cost per UTC day
and month). Pure bookkeeping with the clock passed in; the server calls :meth:`admit`
before a request and :meth:`record` after it.

Counts live in this process: with several replicas each enforces its own share of the
rate limits. Budgets start from the spend stored in traces, so a restart does not reset
them.
"""

from __future__ import annotations

import calendar
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rung.auth.keys import ApiKey
from rung.errors import RateLimited

WINDOW_S = 60.0


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


@dataclass
class _Usage:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    day: float = -1.0
    day_spent: float = 0.0
    month: float = -1.0
    month_spent: float = 0.0


class Limiter:
    def __init__(self, spent_since: Callable[[str, float], float]) -> None:
        self._spent_since = spent_since
        self._usage: dict[str, _Usage] = {}

    def _get(self, key_id: str, now: float) -> _Usage:
        u = self._usage.setdefault(key_id, _Usage())
        if u.day != day_start(now):
            u.day = day_start(now)
            u.day_spent = self._spent_since(key_id, u.day)
        if u.month != month_start(now):
            u.month = month_start(now)
            u.month_spent = self._spent_since(key_id, u.month)
        while u.requests and u.requests[0] <= now - WINDOW_S:
            u.requests.popleft()
        while u.tokens and u.tokens[0][0] <= now - WINDOW_S:
            u.tokens.popleft()
        return u

    def admit(self, key: ApiKey, now: float) -> None:
        """Raise RateLimited (with retry-after) or count the request in."""
        u = self._get(key.id, now)
        if key.rpm is not None and len(u.requests) >= key.rpm:
            raise RateLimited(f"Rate limit reached: {key.rpm} requests per minute.",
                              retry_after_s=u.requests[0] + WINDOW_S - now)
        used = sum(n for _, n in u.tokens)
        if key.tpm is not None and used >= key.tpm:
            raise RateLimited(f"Rate limit reached: {key.tpm} tokens per minute.",
                              retry_after_s=u.tokens[0][0] + WINDOW_S - now)
        if key.daily_budget is not None and u.day_spent >= key.daily_budget:
            raise RateLimited(f"Daily budget of {key.daily_budget} spent.",
                              retry_after_s=u.day + 86400 - now, code="budget_exceeded")
        if key.monthly_budget is not None and u.month_spent >= key.monthly_budget:
            raise RateLimited(f"Monthly budget of {key.monthly_budget} spent.",
                              retry_after_s=next_month(now) - now, code="budget_exceeded")
        u.requests.append(now)

    def record(self, key_id: str, *, tokens: int, cost: float, now: float) -> None:
        u = self._get(key_id, now)
        if tokens:
            u.tokens.append((now, tokens))
        u.day_spent += cost
        u.month_spent += cost
