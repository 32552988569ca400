"""Arrival order for requests whose prompts are prepared in parallel.

A local tier renders and tokenizes each prompt in a worker thread, and those threads
finish in any order. Requests are handed to the model in the order they arrived
(first come, first served, whatever the length of the prompt), so the order in which a
batched tier admits them, and with it which requests share a batch, is a function of
their arrival alone: a batched evaluation re-run from its manifest decodes the same
batches (``tests/eval/test_live.py``).
"""

from __future__ import annotations

import asyncio


class ArrivalOrder:
    """Tickets in arrival order; a holder waits for its turn, then leaves the line."""

    def __init__(self) -> None:
        self._line: dict[int, asyncio.Event] = {}  # insertion order is ticket order
        self._next = 0

    def take(self) -> int:
        ticket, self._next = self._next, self._next + 1
        turn = asyncio.Event()
        if not self._line:
            turn.set()
        self._line[ticket] = turn
        return ticket

    async def turn(self, ticket: int) -> None:
        """Return once every earlier ticket has left the line."""
        await self._line[ticket].wait()

    def leave(self, ticket: int) -> None:
        """Leave the line (handed on, or given up); the next ticket's turn may come."""
        if self._line.pop(ticket, None) is not None and self._line:
            next(iter(self._line.values())).set()

    def __len__(self) -> int:
        return len(self._line)
