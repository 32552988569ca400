"""Retries and the circuit breaker: the breaker's states with a fake clock, retries and
fallback against real upstream servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rung.backends.resilience import CircuitBreaker, ResilientBackend
from rung.errors import BackendUnavailable, UpstreamError
from rung.gateway import Gateway
from rung.types import ChatRequest, Chunk, Message
from tests.conftest import behaviour, config_of, upstream_server, upstream_tier

REQ = ChatRequest(messages=(Message("user", "hi"),))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=3, window_s=10, cooldown_s=5, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    clock.t = 11  # the two failures left the window
    b.failure()
    assert b.state == "closed"
    b.failure()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t = 16.5
    assert b.state == "half-open"
    assert b.allow() and not b.allow()  # one probe at a time
    b.failure()  # the probe failed: open again
    assert b.state == "open"
    clock.t = 22
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


class Flaky:
    name = "flaky"
    ready = True

    def __init__(self, script: list[str | Exception], *, fail_after_text: bool = False) -> None:
        self.script, self.calls, self.fail_after_text = script, 0, fail_after_text

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls += 1
        item = self.script.pop(0)
        if isinstance(item, Exception):
            if self.fail_after_text:
                yield Chunk(text="partial")
            raise item
        yield Chunk(text=item, finish_reason="stop")


async def _collect(backend: ResilientBackend) -> str:
    return "".join([c.text async for c in backend.stream(REQ)])


def _wrap(inner: Flaky, retries: int = 2) -> ResilientBackend:
    async def no_sleep(_: float) -> None:
        return None

    return ResilientBackend(inner, retries=retries, backoff_s=0.1, sleep=no_sleep,  # type: ignore[arg-type]
                            breaker=CircuitBreaker(failures=100, window_s=60, cooldown_s=1))


@pytest.mark.parametrize(("script", "retries", "calls", "ok"), [
    ([UpstreamError("x", upstream_status=503, retryable=True), "fine"], 2, 2, True),
    ([BackendUnavailable("x"), BackendUnavailable("x"), "fine"], 2, 3, True),
    ([BackendUnavailable("x")] * 3, 2, 3, False),
    ([UpstreamError("x", upstream_status=400, retryable=False), "fine"], 2, 1, False),
    ([BackendUnavailable("x"), "fine"], 0, 1, False),
])
async def test_retries(script: list[str | Exception], retries: int, calls: int,
                       ok: bool) -> None:
    inner = Flaky(list(script))
    backend = _wrap(inner, retries)
    if ok:
        assert await _collect(backend) == "fine"
    else:
        with pytest.raises((BackendUnavailable, UpstreamError)):
            await _collect(backend)
    assert inner.calls == calls


async def test_no_retry_once_text_has_streamed() -> None:
    inner = Flaky([BackendUnavailable("mid-stream"), "fine"], fail_after_text=True)
    with pytest.raises(BackendUnavailable):
        await _collect(_wrap(inner))
    assert inner.calls == 1


async def test_retry_against_a_real_upstream() -> None:
    with upstream_server() as up:
        behaviour(up).fail_first = 2
        gw = Gateway(config_of(tiers=[upstream_tier("up", up.url, backoff_s=0.01)]))
        text = "".join([c.text async for c in gw.reply("up", REQ)])
        await gw.aclose()
        assert text == "Hello from the upstream." and behaviour(up).calls == 3


async def test_breaker_sheds_a_dead_upstream_and_recovers() -> None:
    with upstream_server() as bad, upstream_server() as good:
        tiers = [upstream_tier("a", bad.url, retries=0, breaker_failures=3,
                               breaker_cooldown_s=0.3), upstream_tier("b", good.url)]
        gw = Gateway(config_of(tiers=tiers))
        behaviour(bad).fail_status = 500

        async def ask() -> str | None:
            reply = gw.reply("rung", REQ)
            [c async for c in reply]
            return reply.route.tier

        assert [await ask() for _ in range(5)] == ["b"] * 5
        assert behaviour(bad).calls == 3  # after 3 failures the breaker stopped calling it
        behaviour(bad).fail_status = None  # the upstream is back
        import asyncio

        await asyncio.sleep(0.35)
        assert await ask() == "a"  # the half-open probe succeeded
        assert gw.backends["a"].breaker.state == "closed"  # type: ignore[attr-defined]
        await gw.aclose()
