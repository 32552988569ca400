"""The repetition check on the loops SmolLM2 really falls into, and the tier's length cap
through the real embedded model."""

from __future__ import annotations

import asyncio

import pytest

from rung.config import parse_config
from rung.gateway import Gateway
from rung.types import Answer, ChatRequest, Chunk, Message
from rung.verify.repetition import RepetitionVerifier, repeated_share

ASK = ChatRequest(messages=(Message("user", "Write a haiku about the sea."),))


def answer(text: str, finish: str = "stop") -> Answer:
    return Answer(tier="t", chunks=[Chunk(text=text, finish_reason=finish)])  # type: ignore[arg-type]


async def _no_generate(tier: str, request: ChatRequest) -> Answer:
    raise AssertionError("the repetition check generates nothing")


def verdict(a: Answer, request: ChatRequest = ASK) -> bool:
    return asyncio.run(RepetitionVerifier().verify(request, a, _no_generate)).accept


@pytest.mark.parametrize(("text", "accept"), [
    ("Aleuton, aye, aye, aye, aye, aye, aye, aye, aye, aye, aye, aye, aye, aye, aye", False),
    (("L'Étoile, la femme au martyre, la femme au martyre, la femme au martyre, "
     "la femme au martyre, la femme au martyre"), False),
    (("The opposite of hot is cold. This is a fundamental concept in physics and chemistry, "
     "where heat is a form of energy that can be converted into other forms."), True),
    ("1. Red\n2. Blue\n3. Green", True),
])
def test_loops_are_rejected_and_prose_is_not(text: str, accept: bool) -> None:
    assert verdict(answer(text)) is accept


def test_cut_at_the_tiers_cap_is_rejected_but_not_at_the_clients() -> None:
    text = "The sea is wide and deep and blue and calm"
    assert not verdict(answer(text, "length"))
    assert verdict(answer(text, "length"), ChatRequest(messages=ASK.messages, max_tokens=10))


def test_repeated_share() -> None:
    assert repeated_share("too short to say anything") == 0.0
    assert repeated_share("a b c " * 10) > 0.8


@pytest.mark.slow
def test_a_tiers_max_tokens_caps_answers_that_set_none() -> None:
    cfg = parse_config({"tiers": [{"name": "smol", "backend": {
        "type": "llama", "model": "smollm2-135m", "max_tokens": 8}}]})

    async def run() -> tuple[Answer, Answer]:
        gw = Gateway(cfg)
        await gw.start()
        try:
            capped = await gw.cascade.generate("smol", ASK)
            asked = await gw.cascade.generate(
                "smol", ChatRequest(messages=ASK.messages, max_tokens=20, temperature=0.0))
            return capped, asked
        finally:
            await gw.aclose()

    capped, asked = asyncio.run(run())
    assert capped.usage is not None and capped.usage.completion_tokens <= 8
    assert capped.finish_reason == "length"
    assert asked.usage is not None and asked.usage.completion_tokens > 8
