"""Continuous batching on the real embedded model, against the one-at-a-time path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import numpy as np
import pytest
from pydantic import ValidationError

from rung.backends.llama import LlamaBackend
from rung.backends.llama_batch import sample
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.errors import BackendError
from rung.types import ChatRequest, Message, ResponseFormat
from tests.backends.conftest import Got, collect, leave_after_first_chunk, started

PROMPTS = ["What is 2+3?", "Name a color.", "Write a haiku about the sea.",
           "What is the capital of France?", "Count from 1 to 10.", "Say hello in Spanish."]


def _req(prompt: str, **kw: object) -> ChatRequest:
    base: dict[str, object] = {"max_tokens": 24, "temperature": 0.0, "logprobs": True}
    base.update(kw)
    return ChatRequest(messages=(Message("user", prompt),), **base)  # type: ignore[arg-type]


async def _all(backend: LlamaBackend, reqs: list[ChatRequest]) -> list[Got]:
    return list(await asyncio.gather(*(collect(backend, r) for r in reqs)))


@pytest.fixture(scope="module")
def single(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 1)


@pytest.fixture(scope="module")
def batched(loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    yield from started(loop, 4)


@pytest.mark.slow
def test_a_request_alone_in_the_engine_matches_the_single_path_exactly(
        loop: asyncio.AbstractEventLoop, single: LlamaBackend, batched: LlamaBackend) -> None:
    for p in PROMPTS[:3]:
        a = loop.run_until_complete(collect(single, _req(p)))
        b = loop.run_until_complete(collect(batched, _req(p)))
        assert a.text == b.text and a.text
        assert a.logprobs == b.logprobs
        assert a.last is not None and b.last is not None
        assert a.last.usage == b.last.usage


@pytest.mark.slow
def test_more_requests_than_slots_all_finish_and_share_the_compute(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend) -> None:
    engine = batched._engine
    assert engine is not None
    before = engine.busy_s
    got = loop.run_until_complete(_all(batched, [_req(p) for p in PROMPTS]))
    assert engine.running == 0 and batched.in_flight == 0
    for g in got:
        assert g.text and g.last is not None and g.last.usage is not None
        assert 1 <= g.last.usage.completion_tokens <= 24
        assert len(g.logprobs) == g.last.usage.completion_tokens or g.last.finish_reason == "stop"
        assert g.last.compute_s is not None and g.last.compute_s > 0
    # Six requests, four slots: two waited for a slot.
    assert sum(1 for g in got if g.last is not None and (g.last.queue_ms or 0) > 1.0) >= 2
    total = sum(g.last.compute_s or 0 for g in got if g.last is not None)
    assert total == pytest.approx(engine.busy_s - before, rel=0.01)


@pytest.mark.slow
def test_stop_strings_and_max_tokens_hold_in_a_batch(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend) -> None:
    reqs = [_req("Count from 1 to 10.", stop=("4",), max_tokens=40),
            _req("Write a haiku about the sea.", max_tokens=5)]
    a, b = loop.run_until_complete(_all(batched, reqs))
    assert "4" not in a.text and "3" in a.text
    assert a.last is not None and a.last.finish_reason == "stop"
    assert b.last is not None and b.last.finish_reason == "length"
    assert b.last.usage is not None and b.last.usage.completion_tokens == 5


@pytest.mark.slow
def test_seeded_sampling_repeats_and_a_cancelled_stream_frees_its_slot(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend) -> None:
    req = _req("Write a haiku about the sea.", temperature=0.9, seed=7, max_tokens=16)
    first = loop.run_until_complete(collect(batched, req))
    again = loop.run_until_complete(collect(batched, req))
    assert first.text == again.text

    loop.run_until_complete(leave_after_first_chunk(
        batched, _req("Count from 1 to 10.", max_tokens=200)))
    loop.run_until_complete(asyncio.sleep(0.5))
    assert batched._engine is not None and batched._engine.running == 0
    assert loop.run_until_complete(collect(batched, _req("What is 2+3?"))).text


@pytest.mark.slow
def test_json_mode_takes_the_grammar_path_on_a_batched_tier(
        loop: asyncio.AbstractEventLoop, batched: LlamaBackend) -> None:
    schema = {"type": "object", "properties": {"color": {"enum": ["red", "blue"]}},
              "required": ["color"], "additionalProperties": False}
    req = _req("Pick a color.", max_tokens=40, logprobs=False,
               response_format=ResponseFormat(type="json_schema", schema=schema))
    assert batched._engine is not None
    busy = batched._engine.busy_s
    got = loop.run_until_complete(collect(batched, req))
    assert json.loads(got.text)["color"] in ("red", "blue")
    assert batched._engine.busy_s == busy  # not decoded by the batch engine


def test_parallel_needs_a_single_instance_and_room_in_the_batch() -> None:
    with pytest.raises(ValidationError, match="parallel > 1 needs instances = 1"):
        LlamaBackendConfig(parallel=4, instances=2)
    with pytest.raises(ValidationError, match="must not exceed n_batch"):
        LlamaBackendConfig(parallel=16, n_batch=8)


def test_sample_is_greedy_at_zero_and_seeded_otherwise() -> None:
    logits = np.array([0.1, 3.0, 2.9, -1.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    assert sample(logits, temperature=0.0, top_p=1.0, rng=rng) == 1
    assert sample(logits, temperature=1.0, top_p=0.01, rng=rng) == 1  # only the top token
    draws = [sample(logits, temperature=1.0, top_p=1.0, rng=np.random.default_rng(s))
             for s in range(200)]
    again = [sample(logits, temperature=1.0, top_p=1.0, rng=np.random.default_rng(s))
             for s in range(200)]
    assert draws == again and {1, 2} <= set(draws) and 0.3 < draws.count(1) / 200 < 0.7


@pytest.mark.slow
def test_unloading_a_batched_tier_ends_every_waiting_request(
        loop: asyncio.AbstractEventLoop) -> None:
    async def go() -> list[BaseException | Got]:
        b = LlamaBackend("closing", LlamaBackendConfig(parallel=2), catalog=CatalogConfig())
        await b.start()
        tasks = [asyncio.ensure_future(collect(b, _req(p, max_tokens=400)))
                 for p in PROMPTS[:4]]
        await asyncio.sleep(1.0)  # two running, two queued
        await b.aclose()
        return list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                           timeout=30))

    results = loop.run_until_complete(go())
    errors = [r for r in results if isinstance(r, BackendError)]
    assert len(results) == 4 and errors and all("unloaded" in str(e) for e in errors)
