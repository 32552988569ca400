"""Sticky starts: once a conversation had to escalate, its later steps start where it
ended up, instead of paying for the cheap tier's rejected answer at every step.

The memory maps a conversation key (``rung.routing.steps.conversation_key``) to the
ladder position of the tier that answered after escalating. An entry lives ``ttl_s``
seconds since it was last used (set or read); at most ``max_keys`` are kept, the least
recently used going first, so memory stays bounded (10,000 keys: about 2 MB) whatever the
traffic. It is per process: replicas behind a load balancer do not share it, and a step
that lands on another replica is scored afresh, as if stickiness were off (session
affinity at the balancer gives the full effect). A restart forgets everything.

The clock is an argument, so the memory is tested without waiting and never reads time
itself; it does no I/O and holds no lock (the gateway uses it from its event loop only).
"""

from __future__ import annotations

from collections import OrderedDict

MAX_KEYS = 10_000


class StickyStarts:
    """Conversation key -> the ladder position its later steps start at."""

    def __init__(self, ttl_s: float, *, max_keys: int = MAX_KEYS) -> None:
        if ttl_s <= 0 or max_keys < 1:
            raise ValueError("StickyStarts needs ttl_s > 0 and max_keys >= 1")
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        # key -> (tier position, last use); ordered by last use, oldest first.
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        """Drop expired entries: they are the oldest, at the front."""
        while self._entries:
            key, (_, used) = next(iter(self._entries.items()))
            if now - used < self.ttl_s:
                return
            del self._entries[key]

    def get(self, key: str, now: float) -> int | None:
        """The position ``key``'s steps start at, or None; a hit counts as a use."""
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = (entry[0], now)
        self._entries.move_to_end(key)
        return entry[0]

    def remember(self, key: str, tier: int, now: float) -> None:
        """``key``'s conversation escalated to position ``tier``: its later steps start
        there (or higher, if an earlier step went higher)."""
        self._expire(now)
        held = self._entries.pop(key, None)
        self._entries[key] = (max(tier, held[0]) if held else tier, now)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
