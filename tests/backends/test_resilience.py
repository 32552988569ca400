"""Retries and the circuit breaker: the breaker's states with a fake clock, retries and
fallback against real upstream servers on loopback, and that every way a call can end
(an answer, an error of any type, a deadline, a client that leaves) leaves the breaker
able to let the tier answer again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress

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
                               breaker_cooldown_s=1.0), upstream_tier("b", good.url)]
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

        await asyncio.sleep(1.05)
        assert await ask() == "a"  # the half-open probe succeeded
        assert gw.backends["a"].breaker.state == "closed"  # type: ignore[attr-defined]
        await gw.aclose()


# Every way a call can end must leave the breaker able to let the tier answer again: a
# half-open probe that ends without success() or failure() would refuse every later call.

HANG = None  # in a script: wait until cancelled
TEXT, STOP = Chunk(text="back"), Chunk(finish_reason="stop")
Step = Chunk | Exception | None


class Upstream:
    """Each call plays the next script (chunks to yield, an exception to raise, HANG);
    once the scripts run out, every call answers ``text``."""

    ready = True

    def __init__(self, *scripts: Sequence[Step], name: str = "a", text: str = "back") -> None:
        self.name, self.scripts, self.calls = name, list(scripts), 0
        self.answer = (Chunk(text=text), STOP)
        self.hanging = asyncio.Event()

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls += 1
        for step in self.scripts.pop(0) if self.scripts else self.answer:
            if step is HANG:
                self.hanging.set()
                await asyncio.Event().wait()
            elif isinstance(step, Exception):
                raise step
            else:
                yield step


def _breaker(clock: Clock, failures: int = 1) -> CircuitBreaker:
    return CircuitBreaker(failures=failures, window_s=60, cooldown_s=5, clock=clock)


async def _consume(backend: ResilientBackend, inner: Upstream, read: int | None,
                   leave: str) -> None:
    """Read the stream as a client would: to its end (``read`` None), or ``read`` chunks
    and then ``close`` it, or ``cancel`` the reading task once the upstream hangs (after
    the chunks its script yields before HANG)."""
    stream = backend.stream(REQ)
    if read is None:
        with suppress(Exception):
            [c async for c in stream]
    elif leave == "close":
        for _ in range(read):
            await anext(stream)
        await stream.aclose()
    else:
        task = asyncio.create_task(_drain(stream))
        await asyncio.wait_for(inner.hanging.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _drain(stream: AsyncIterator[Chunk]) -> None:
    async for _ in stream:
        pass


@pytest.mark.parametrize(("probe", "read", "leave", "after"), [
    ((TEXT, STOP), None, "", "closed"),
    ((BackendUnavailable("still down"),), None, "", "open"),
    ((RuntimeError("a bug in the backend"),), None, "", "open"),
    ((ValueError("bad chunk"),), None, "", "open"),
    ((TEXT, KeyError("mid-stream")), None, "", "open"),
    ((HANG,), 0, "cancel", "open"),  # the client left before the first chunk
    ((TEXT, HANG), 1, "cancel", "half-open"),  # left mid-answer: no verdict, slot freed
    ((TEXT, HANG), 1, "close", "half-open"),
    ((TEXT, STOP, HANG), 2, "close", "closed"),  # stopped reading after a whole answer
    ((TEXT, STOP, HANG), 2, "cancel", "closed"),
], ids=["answer", "backend-error", "runtime-error", "value-error", "error-after-text",
        "cancelled-before-text", "cancelled-mid-answer",
        "closed-mid-answer", "closed-after-answer", "cancelled-after-answer"])
async def test_every_end_of_a_probe_releases_it(probe: Sequence[Step], read: int | None,
                                                leave: str, after: str) -> None:
    clock = Clock()
    inner = Upstream((BackendUnavailable("down"),), probe)
    backend = ResilientBackend(inner, retries=0, backoff_s=0, breaker=_breaker(clock))
    with pytest.raises(BackendUnavailable):
        await _collect(backend)
    assert backend.breaker.state == "open"
    clock.t = 5
    await _consume(backend, inner, read, leave)
    assert inner.calls == 2 and backend.breaker.state == after
    clock.t = 10  # the upstream is healthy again, and the cooldown is over
    assert await _collect(backend) == "back"
    assert inner.calls == 3 and backend.breaker.state == "closed"


@pytest.mark.parametrize(("call", "read", "leave", "after"), [
    ((RuntimeError("a bug"),), None, "", "open"),  # an unexpected error is a failure
    ((HANG,), 0, "cancel", "open"),  # so is no first chunk within the caller's patience
    ((TEXT, HANG), 1, "cancel", "closed"),  # a client stopping a generation is not
    ((TEXT, HANG), 1, "close", "closed"),
], ids=["runtime-error", "cancelled-before-text", "cancelled-mid-answer", "closed-mid-answer"])
async def test_how_a_call_counts_on_a_closed_breaker(call: Sequence[Step], read: int | None,
                                                     leave: str, after: str) -> None:
    inner = Upstream(call)
    backend = ResilientBackend(inner, retries=0, backoff_s=0, breaker=_breaker(Clock()))
    await _consume(backend, inner, read, leave)
    assert backend.breaker.state == after


async def test_probe_cut_off_by_the_tier_deadline() -> None:
    clock = Clock()
    inner = Upstream((BackendUnavailable("down"),), (HANG,))
    a = ResilientBackend(inner, retries=0, backoff_s=0, breaker=_breaker(clock))
    fallback = Upstream(name="b", text="fallback")
    tiers = [upstream_tier("a", "http://127.0.0.1:9") | {"timeout_s": 0.05},
             upstream_tier("b", "http://127.0.0.1:9")]
    gw = Gateway(config_of(tiers=tiers), backends={"a": a, "b": fallback})

    async def ask() -> tuple[str, str | None]:
        reply = gw.reply("rung", REQ)
        text = "".join([c.text async for c in reply])
        return text, reply.route.tier

    assert await ask() == ("fallback", "b")  # a is down: its breaker opens
    clock.t = 5
    assert await ask() == ("fallback", "b")  # the probe hangs; a's deadline cuts it off
    assert inner.calls == 2 and a.breaker.state == "open"  # counted as a failure
    clock.t = 10
    assert await ask() == ("back", "a")  # healthy again: a answers
    assert a.breaker.state == "closed"


async def test_an_upstream_down_then_slow_then_healthy_is_used_again() -> None:
    """The reported case, over HTTP: the probe that met a slow upstream timed out at the
    tier's deadline, and the breaker then refused the tier until a restart. (The breaker
    runs on a fake clock so that a loaded machine cannot outlast its cooldown.)"""
    with upstream_server() as flaky, upstream_server() as good:
        behaviour(good).reply = "Hello from the fallback."
        tiers = [upstream_tier("a", flaky.url, retries=0) | {"timeout_s": 1.5},
                 upstream_tier("b", good.url)]
        gw = Gateway(config_of(tiers=tiers))
        clock = Clock()
        gw.backends["a"].breaker = breaker = _breaker(clock, failures=2)  # type: ignore[attr-defined]

        async def ask() -> tuple[str, str | None]:
            reply = gw.reply("rung", REQ)
            text = "".join([c.text async for c in reply])
            return text, reply.route.tier

        try:
            behaviour(flaky).fail_status = 500  # down
            assert [await ask() for _ in range(3)] == [("Hello from the fallback.", "b")] * 3
            assert behaviour(flaky).calls == 2 and breaker.state == "open"
            behaviour(flaky).fail_status, behaviour(flaky).delay_s = None, 30.0  # slow
            clock.t = 5
            assert await ask() == ("Hello from the fallback.", "b")  # the probe timed out
            assert behaviour(flaky).calls == 3
            behaviour(flaky).delay_s = 0.0  # healthy
            clock.t = 10
            assert await ask() == ("Hello from the upstream.", "a")
            assert await ask() == ("Hello from the upstream.", "a")
            assert breaker.state == "closed" and behaviour(flaky).calls == 5
        finally:
            await gw.aclose()
