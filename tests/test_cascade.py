"""The cascade's control flow, step by step, with scripted backends (STYLE rule 15:
fakes for control flow only; model features are tested on the real model elsewhere)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rung.errors import BackendUnavailable, ConfigError, NoTierAvailable
from rung.gateway import Gateway
from rung.types import (
    ChatRequest,
    Chunk,
    Message,
    Outcome,
    ResponseFormat,
    Route,
    TokenLogprob,
    Usage,
)
from tests.conftest import config_of


class Scripted:
    """Replies from a queue; an Exception in the queue is raised instead."""

    def __init__(self, name: str, replies: list[str | Exception], *, logprob: float = -0.1,
                 delay: float = 0.0) -> None:
        self.name, self.replies, self.logprob, self.delay = name, list(replies), logprob, delay
        self.calls: list[ChatRequest] = []

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(reply, Exception):
            raise reply
        lps = tuple(TokenLogprob(w, self.logprob) for w in reply.split()) \
            if request.logprobs else ()
        yield Chunk(text=reply, logprobs=lps)
        yield Chunk(finish_reason="stop", usage=Usage(10, len(reply.split())))


def _gw(tiers: list[dict[str, object]], backends: list[Scripted], **routing: object) -> Gateway:
    return Gateway(config_of(tiers=tiers, routing=routing),
                   backends={b.name: b for b in backends})


def _tier(name: str, *verifiers: dict[str, object], **kw: object) -> dict[str, object]:
    return {"name": name, "backend": {"type": "openai", "base_url": "http://x/v1",
                                      "model": "m"}, "verifiers": list(verifiers), **kw}


async def _run(gw: Gateway, req: ChatRequest, **kw: object) -> tuple[str, Route]:
    reply = gw.reply("rung", req, **kw)  # type: ignore[arg-type]
    text = "".join([c.text async for c in reply])
    route = reply.route
    return text, route


Q = ChatRequest(messages=(Message("user", "What is 2+2?"),))
JSON_Q = ChatRequest(messages=Q.messages, response_format=ResponseFormat("json_object"))
SCHEMA_Q = ChatRequest(messages=Q.messages, response_format=ResponseFormat(
    "json_schema", {"type": "object", "properties": {"a": {"type": "integer"}},
                    "required": ["a"]}))


async def test_accepted_answer_stays_on_the_small_tier() -> None:
    small, big = Scripted("small", ["4"]), Scripted("big", ["four"])
    gw = _gw([_tier("small", {"type": "logprob", "min_logprob": -1.0}), _tier("big")],
             [small, big])
    text, route = await _run(gw, Q)
    assert (text, route.tier, route.escalations) == ("4", "small", 0)
    assert small.calls[0].logprobs  # asked for logprobs because a verifier needs them
    assert not big.calls


async def test_low_confidence_escalates() -> None:
    small, big = Scripted("small", ["maybe 5"], logprob=-3.0), Scripted("big", ["4"])
    gw = _gw([_tier("small", {"type": "logprob", "min_logprob": -1.0}), _tier("big")],
             [small, big])
    text, route = await _run(gw, Q)
    assert (text, route.tier, route.escalations) == ("4", "big", 1)
    assert route.as_dict()["attempts"][0]["outcome"] == "rejected"
    assert route.as_dict()["attempts"][0]["verdicts"][0]["name"] == "logprob"
    assert "small:rejected(logprob=" in route.header()


@pytest.mark.parametrize(("req", "small_reply", "tier"), [
    (JSON_Q, "not json", "big"),
    (JSON_Q, '{"a": "x"}', "small"),
    (SCHEMA_Q, '{"a": "x"}', "big"),  # valid JSON, wrong schema
    (SCHEMA_Q, '{"a": 1}', "small"),
    (Q, "plain text", "small"),  # JSON not asked for
])
async def test_json_and_schema_verifier(req: ChatRequest, small_reply: str, tier: str) -> None:
    gw = _gw([_tier("small", {"type": "json"}), _tier("big")],
             [Scripted("small", [small_reply]), Scripted("big", ['{"a": 1}'])])
    _, route = await _run(gw, req)
    assert route.tier == tier


async def test_three_tiers_escalate_step_by_step() -> None:
    a = Scripted("a", ["x"], logprob=-5)
    b = Scripted("b", ["y"], logprob=-5)
    c = Scripted("c", ["z"])
    lp = {"type": "logprob", "min_logprob": -1.0}
    gw = _gw([_tier("a", lp), _tier("b", lp), _tier("c", lp)], [a, b, c])
    text, route = await _run(gw, Q)
    assert (text, route.tier, route.escalations) == ("z", "c", 2)
    assert [x["outcome"] for x in route.as_dict()["attempts"]] == ["rejected", "rejected", "answered"]
    assert "verdicts" not in route.as_dict()["attempts"][2]  # the last tier is not verified


async def test_score_picks_the_starting_tier() -> None:
    a, b, c = Scripted("a", ["x"]), Scripted("b", ["y"]), Scripted("c", ["z"])
    gw = _gw([_tier("a"), _tier("b"), _tier("c")], [a, b, c], thresholds=[0.3, 0.7])
    for th, expected in (([0.0, 1.0], "b"), ([0.0, 0.0], "c"), ([1.0, 1.0], "a")):
        _text, route = await _run(gw, Q, thresholds=th)
        assert route.tier == expected and route.start == "abc".index(expected)
        assert route.score is not None and route.reason.startswith("score")


async def test_pin_overrides_routing() -> None:
    a, b = Scripted("a", ["x"]), Scripted("b", ["y"])
    gw = _gw([_tier("a", {"type": "logprob", "min_logprob": 0.0}), _tier("b")], [a, b])
    text, route = await _run(gw, Q, pin="a")
    assert (text, route.reason, route.escalations) == ("x", "pinned", 0)


async def test_failures_fall_back_then_503() -> None:
    a = Scripted("a", [BackendUnavailable("down")])
    b = Scripted("b", ["y"])
    gw = _gw([_tier("a"), _tier("b")], [a, b])
    text, route = await _run(gw, Q)
    assert (text, route.tier) == ("y", "b")
    assert route.as_dict()["attempts"][0]["outcome"] == "BackendUnavailable"
    dead = _gw([_tier("a"), _tier("b")], [Scripted("a", [BackendUnavailable("x")]),
                                          Scripted("b", [BackendUnavailable("y")])])
    with pytest.raises(NoTierAvailable):
        await _run(dead, Q)


async def test_tier_timeout_falls_back() -> None:
    slow, fast = Scripted("slow", ["late"], delay=2.0), Scripted("fast", ["on time"])
    gw = _gw([_tier("slow", timeout_s=0.05), _tier("fast")], [slow, fast])
    text, route = await _run(gw, Q)
    assert (text, route.tier) == ("on time", "fast")
    assert route.as_dict()["attempts"][0]["outcome"] == "BackendTimeout"


async def test_rejected_answer_is_returned_when_every_later_tier_fails() -> None:
    a = Scripted("a", ["x"], logprob=-5)
    b = Scripted("b", [BackendUnavailable("down")])
    gw = _gw([_tier("a", {"type": "logprob", "min_logprob": -1.0}), _tier("b")], [a, b])
    text, route = await _run(gw, Q)
    assert (text, route.tier) == ("x", "a")
    assert "rejected answer" in route.reason


async def test_self_consistency_samples_the_same_tier() -> None:
    agree = Scripted("a", ["The answer is 4."])
    gw = _gw([_tier("a", {"type": "self_consistency", "samples": 3}), _tier("b")],
             [agree, Scripted("b", ["big"])])
    _text, route = await _run(gw, Q)
    assert route.tier == "a" and len(agree.calls) == 4
    assert all(c.temperature == 0.7 for c in agree.calls[1:])
    disagree = Scripted("a", ["It is 4.", "It is 5.", "It is 6.", "It is 7."])
    gw = _gw([_tier("a", {"type": "self_consistency", "samples": 3}), _tier("b")],
             [disagree, Scripted("b", ["big"])])
    _, route = await _run(gw, Q)
    assert route.tier == "b"


async def test_cross_check_solves_on_a_helper_tier() -> None:
    check = {"type": "self_consistency", "samples": 1, "temperature": 0.0, "tier": "checker"}
    for checker_says, tier in (("So the answer is 4.", "a"), ("The answer is 5.", "b")):
        a, b = Scripted("a", ["2 + 2 = 4. The answer is 4."]), Scripted("b", ["big"])
        checker = Scripted("checker", [checker_says])
        gw = _gw([_tier("a", check), _tier("b"), _tier("checker", ladder=False)],
                 [a, b, checker])
        _text, route = await _run(gw, Q)
        assert route.tier == tier
        assert len(a.calls) == 1 and len(checker.calls) == 1  # the sample came from checker
        assert checker.calls[0].temperature == 0.0
        verdict = route.as_dict()["attempts"][0]["verdicts"][0]
        assert verdict["name"] == "cross_check" and "by checker" in verdict["detail"]
    # Off the ladder: when b is down, the rejected answer comes back, never the checker's.
    a = Scripted("a", ["The answer is 4."])
    checker = Scripted("checker", ["The answer is 5."])
    gw = _gw([_tier("a", check), _tier("b"), _tier("checker", ladder=False)],
             [a, Scripted("b", [BackendUnavailable("down")]), checker])
    text, route = await _run(gw, Q)
    assert (text, route.tier, len(checker.calls)) == ("The answer is 4.", "a", 1)
    assert [x["tier"] for x in route.as_dict()["attempts"]] == ["a", "b"]
    with pytest.raises(BackendUnavailable):  # started at b, the top of the ladder: no helper
        await _run(gw, Q, thresholds=[0.0])
    assert len(checker.calls) == 1
    text, route = await _run(gw, Q, pin="checker")  # a helper can still be pinned
    assert route.tier == "checker"


@pytest.mark.parametrize(("tiers", "routing", "message"), [
    ([_tier("a", {"type": "self_consistency", "tier": "nope"}), _tier("b")], {},
     "self_consistency tier 'nope' does not exist"),
    ([_tier("a"), _tier("b"), _tier("c", ladder=False)], {"thresholds": [0.1, 0.2]},
     "needs 1 values"),
    ([_tier("a", ladder=False)], {}, "no tier is on the ladder"),
    ([_tier("a"), _tier("c", {"type": "json"}, ladder=False)], {}, "verifiers would never run"),
])
def test_helper_and_check_tiers_are_validated(tiers: list[dict[str, object]],
                                              routing: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_of(tiers=tiers, routing=routing)


async def test_judge_reads_yes_probability() -> None:
    class Judge(Scripted):
        async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
            self.calls.append(request)
            if "Proposed answer" in request.messages[-1].content:
                from rung.types import TopLogprob

                yield Chunk(text="no", logprobs=(TokenLogprob("no", -0.1, top=(
                    TopLogprob("no", -0.1), TopLogprob("yes", -2.5))),))
                yield Chunk(finish_reason="stop", usage=Usage(30, 1))
                return
            async for c in super().stream(request):
                yield c

    a = Judge("a", ["5"])
    gw = _gw([_tier("a", {"type": "judge"}), _tier("b")], [a, Scripted("b", ["4"])])
    text, route = await _run(gw, Q)
    assert (text, route.tier) == ("4", "b")
    assert "P(yes) 0.083" in route.as_dict()["attempts"][0]["verdicts"][0]["detail"]


async def test_stream_unverified_streams_the_first_tier() -> None:
    a = Scripted("a", ["x"], logprob=-9)
    gw = _gw([_tier("a", {"type": "logprob", "min_logprob": -1.0}), _tier("b")],
             [a, Scripted("b", ["y"])], stream_unverified=True)
    text, route = await _run(gw, Q)
    assert (text, route.tier, route.escalations) == ("x", "a", 0)


async def test_cost_counts_every_generation() -> None:
    cost = {"input_per_mtok": 1_000_000.0, "output_per_mtok": 0.0}
    a = Scripted("a", ["x"], logprob=-9)
    gw = _gw([_tier("a", {"type": "logprob", "min_logprob": -1.0}, cost=cost),
              _tier("b", cost=cost)], [a, Scripted("b", ["y"])])
    _, route = await _run(gw, Q)
    assert route.cost == pytest.approx(20.0)  # 10 prompt tokens on each tier at 1 per token


async def test_a_reply_is_lazy_and_its_route_is_a_frozen_record() -> None:
    a, b = Scripted("a", ["x"], logprob=-9), Scripted("b", ["y"])
    gw = _gw([_tier("a", {"type": "logprob", "min_logprob": -1.0}), _tier("b")], [a, b])
    reply = gw.reply("rung", Q)
    assert reply.route.attempts == () and not a.calls  # nothing runs before it is read
    text = "".join([c.text async for c in reply])
    route = reply.route
    assert (text, route.tier) == ("y", "b")
    assert [x.outcome for x in route.attempts] == [Outcome.REJECTED, Outcome.ANSWERED]
    assert route.attempts[0].cost == 0.0 and route.attempts[1].generate_ms is not None
    assert route == reply.route  # a finished reply's route no longer changes


async def test_closing_a_reply_mid_stream_settles_its_attempt() -> None:
    class Two(Scripted):
        closed = False

        async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
            try:
                yield Chunk(text="one ")
                yield Chunk(text="two")
                yield Chunk(finish_reason="stop", usage=Usage(3, 2))
            finally:
                self.closed = True

    a = Two("a", ["unused"])
    gw = _gw([_tier("a")], [a])
    reply = gw.reply("a", Q)
    first = await reply.__anext__()
    await reply.aclose()  # the client left after the first chunk
    route = reply.route
    assert first.text == "one " and a.closed
    assert route.tier == "a" and route.attempts[0].outcome is Outcome.ANSWERED
    assert route.attempts[0].ms is not None  # its turn was timed: the stream was closed
