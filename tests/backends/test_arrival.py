"""Arrival order: prompts prepared in any order are handed on in the order they came."""

from __future__ import annotations

import asyncio

from rung.backends.arrival import ArrivalOrder


async def test_holders_are_handed_on_in_ticket_order_whatever_order_they_are_ready_in() -> None:
    line = ArrivalOrder()
    handed: list[int] = []

    async def holder(delay: float) -> None:
        ticket = line.take()
        await asyncio.sleep(delay)  # its prompt being prepared
        await line.turn(ticket)
        handed.append(ticket)
        line.leave(ticket)

    await asyncio.gather(holder(0.03), holder(0.0), holder(0.02), holder(0.01))
    assert handed == [0, 1, 2, 3] and len(line) == 0


async def test_a_holder_that_gives_up_does_not_hold_the_line() -> None:
    line = ArrivalOrder()
    first, second, third = line.take(), line.take(), line.take()
    line.leave(second)  # refused while its prompt was prepared
    await asyncio.wait_for(line.turn(first), 1)
    line.leave(first)
    await asyncio.wait_for(line.turn(third), 1)
    line.leave(third)
    line.leave(third)  # leaving twice is harmless
    assert len(line) == 0
