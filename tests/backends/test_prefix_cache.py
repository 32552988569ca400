"""Prefix reuse on the real embedded model: a request whose prompt starts like one the
model already holds evaluates only the rest, and answers exactly as from scratch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import llama_cpp
import pytest

from rung.backends.llama import LlamaBackend
from rung.types import ChatRequest, Message
from tests.backends.conftest import Got, collect, leave_after_first_chunk, started

pytestmark = pytest.mark.slow

# Two system prompts of ~300 tokens that differ from their first word on.
STORE = "\n".join(f"Rule {i}: when asked about item {i}, quote its price and say it is in "
                  f"aisle {i % 7}." for i in range(16))
LIBRARY = "\n".join(f"Shelf {i}: books on topic {i} are lent for {i % 4 + 1} weeks; "
                    f"ask the librarian." for i in range(16))
QUESTIONS = ["Where is item 3?", "How much is item 12?", "What aisle is item 8 in?",
             "Is item 1 cheap?"]


def _req(system: str, question: str, **kw: Any) -> ChatRequest:
    base: dict[str, Any] = {"max_tokens": 16, "temperature": 0.0, "logprobs": True}
    base.update(kw)
    return ChatRequest(messages=(Message("system", system), Message("user", question)),
                       **base)


@pytest.fixture(scope="module")
def batched(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 2, True)


@pytest.fixture(scope="module")
def fresh(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    """Batched, without reuse: every prompt evaluated from its first token."""
    yield from started(loop, 2, False)


@pytest.fixture(scope="module")
def single(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 1, True)


@pytest.fixture(scope="module")
def single_fresh(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 1, False)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tokens in each batch the engine decodes (llama.cpp's own count, not ours)."""
    sizes: list[int] = []
    real = llama_cpp.llama_decode

    def spy(ctx: Any, batch: Any) -> int:
        sizes.append(int(batch.n_tokens))
        return int(real(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", spy)
    return sizes


def _spy_eval(llm: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tokens in each call of this model's ``Llama.eval`` (what llama-cpp-python really
    evaluates; a prompt's tail is its first call in a request)."""
    evaluated: list[int] = []
    real = llm.eval

    def spy(tokens: Any) -> None:
        evaluated.append(len(tokens))
        real(tokens)

    monkeypatch.setattr(llm, "eval", spy)
    return evaluated


def _prompt_tokens(got: Got) -> int:
    assert got.last is not None and got.last.usage is not None
    return got.last.usage.prompt_tokens


def test_a_shared_prefix_is_evaluated_once_and_answers_exactly_as_from_scratch(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend, fresh: LlamaBackend,
        decoded: list[int]) -> None:
    loop.run_until_complete(collect(batched, _req(STORE, "Hello.")))
    for q in QUESTIONS:
        decoded.clear()
        got = loop.run_until_complete(collect(batched, _req(STORE, q)))
        assert got.last is not None and got.last.usage is not None
        n_prompt, n_gen = _prompt_tokens(got), got.last.usage.completion_tokens
        assert n_prompt > 300 and got.cached > n_prompt - 20
        assert got.last.usage.cached_tokens == got.cached  # the request's own usage says it
        # The engine decoded the prompt's tail, then each generated token that was
        # followed by another (the end-of-generation token is never counted in n_gen).
        fed_back = n_gen if got.last.finish_reason == "stop" else n_gen - 1
        assert sum(decoded) == n_prompt - got.cached + fed_back
        want = loop.run_until_complete(collect(fresh, _req(STORE, q)))
        assert want.cached == 0
        assert got.text == want.text and got.logprobs == want.logprobs


def test_a_request_takes_the_slot_holding_its_prefix_not_the_one_free_longest(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend) -> None:
    for system in (STORE, LIBRARY):  # one slot holds each; the STORE one is free longest
        loop.run_until_complete(collect(batched, _req(system, "Hello.", max_tokens=2)))
    got = loop.run_until_complete(collect(batched, _req(LIBRARY, "Which shelf is 5?")))
    assert got.cached > _prompt_tokens(got) - 20
    got = loop.run_until_complete(collect(batched, _req(STORE, "Where is item 5?")))
    assert got.cached > _prompt_tokens(got) - 20


def test_a_prompt_the_slot_holds_whole_reevaluates_its_last_two_tokens(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend, fresh: LlamaBackend) -> None:
    req = _req(LIBRARY, "What is on shelf 2?", max_tokens=4)
    first = loop.run_until_complete(collect(batched, req))
    again = loop.run_until_complete(collect(batched, req))
    assert again.cached == _prompt_tokens(again) - 2  # see llama_batch.REFEED
    want = loop.run_until_complete(collect(fresh, req))
    assert first.text == again.text == want.text and again.logprobs == want.logprobs


def test_limits_and_cancellation_are_unchanged_by_reuse(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend, fresh: LlamaBackend) -> None:
    short = loop.run_until_complete(collect(batched, _req(STORE, "Count to 20.",
                                                           max_tokens=3)))
    assert short.cached > 0 and short.last is not None
    assert short.last.finish_reason == "length" and len(short.logprobs) == 3
    stopped = loop.run_until_complete(collect(batched, _req(STORE, "Count to 20.",
                                                             stop=("3",), max_tokens=40)))
    assert stopped.last is not None and stopped.last.finish_reason == "stop"
    assert "3" not in stopped.text

    loop.run_until_complete(leave_after_first_chunk(
        batched, _req(LIBRARY, "Tell a long story.", max_tokens=200)))
    loop.run_until_complete(asyncio.sleep(0.5))
    assert batched._engine is not None and batched._engine.running == 0
    # What the cancelled request left in its slot is a valid prefix for the next one.
    req = _req(LIBRARY, "Tell a long story.", max_tokens=12)
    got = loop.run_until_complete(collect(batched, req))
    want = loop.run_until_complete(collect(fresh, req))
    assert got.cached == _prompt_tokens(got) - 2
    assert got.text == want.text and got.logprobs == want.logprobs


def test_one_at_a_time_llama_cpp_reuses_the_prefix_and_rung_counts_it_exactly(
        loop: asyncio.AbstractEventLoop, single: LlamaBackend, single_fresh: LlamaBackend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated = _spy_eval(single._llms[0], monkeypatch)
    for q in ["Hello.", *QUESTIONS[:2], QUESTIONS[1]]:  # the last one repeats whole
        evaluated.clear()
        got = loop.run_until_complete(collect(single, _req(STORE, q)))
        assert evaluated[0] == _prompt_tokens(got) - got.cached  # the prompt's tail
        assert got.last is not None and got.last.usage is not None
        assert got.last.usage.cached_tokens == got.cached
        want = loop.run_until_complete(collect(single_fresh, _req(STORE, q)))
        assert got.text == want.text and got.logprobs == want.logprobs
    assert got.cached == _prompt_tokens(got) - 2


def test_without_prefix_cache_the_single_path_evaluates_every_prompt_whole(
        loop: asyncio.AbstractEventLoop, single_fresh: LlamaBackend,
        monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated = _spy_eval(single_fresh._llms[0], monkeypatch)
    for q in QUESTIONS[:2]:
        evaluated.clear()
        got = loop.run_until_complete(collect(single_fresh, _req(STORE, q, max_tokens=2)))
        assert got.cached == 0 and evaluated[0] == _prompt_tokens(got)
