"""Tier selection and fallback, through real upstream servers on loopback."""

import socket

import pytest

from rung.errors import BackendUnavailable, NoTierAvailable, UnknownModel
from rung.gateway import Gateway
from rung.types import ChatRequest, Message, Route
from tests.conftest import behaviour, config_of, upstream_server, upstream_tier

REQ = ChatRequest(messages=(Message("user", "hi"),), max_tokens=20)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def _answer(gw: Gateway, model: str, pin: str | None = None) -> tuple[str, Route]:
    reply = gw.reply(model, REQ, pin=pin)
    text = "".join([c.text async for c in reply])
    route = reply.route
    return text, route


async def test_alias_falls_back_past_a_dead_tier() -> None:
    with upstream_server() as up:
        gw = Gateway(config_of(tiers=[upstream_tier("a", _dead_url()),
                                      upstream_tier("b", up.url)]))
        text, route = await _answer(gw, "rung")
        await gw.aclose()
    assert text == "Hello from the upstream."
    assert route.tier == "b"
    assert [a["outcome"] for a in route.as_dict()["attempts"]] == ["BackendUnavailable", "answered"]
    assert "a:BackendUnavailable" in route.header()


async def test_pinned_tier_does_not_fall_back() -> None:
    with upstream_server() as up:
        gw = Gateway(config_of(tiers=[upstream_tier("a", _dead_url()),
                                      upstream_tier("b", up.url)]))
        with pytest.raises(BackendUnavailable):
            await _answer(gw, "a")
        text, route = await _answer(gw, "rung", pin="b")
        await gw.aclose()
    assert route.reason == "pinned" and text


async def test_all_tiers_failing_is_no_tier_available() -> None:
    with upstream_server() as up:
        behaviour(up).fail_status = 503
        gw = Gateway(config_of(tiers=[upstream_tier("a", _dead_url()),
                                      upstream_tier("b", up.url)]))
        with pytest.raises(NoTierAvailable):
            await _answer(gw, "rung")
        await gw.aclose()


def test_unknown_model() -> None:
    gw = Gateway(config_of(tiers=[upstream_tier("a", _dead_url())]))
    with pytest.raises(UnknownModel):
        gw.check("gpt-5")
    with pytest.raises(UnknownModel):
        gw.check("rung", pin="zzz")
