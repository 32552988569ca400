"""Sampling that fits the model: unset temperature/top_p take the model's recommendation,
set ones are obeyed exactly, and the route says which was applied."""

from __future__ import annotations

import dataclasses

import numpy as np

from rung.backends.llama_batch import sample
from rung.devtools.upstream import UpstreamBehaviour
from rung.sampling import from_gguf, recommended, resolve
from rung.types import ChatRequest, Message, Sampling
from tests.conftest import (
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)

REQ = ChatRequest(messages=(Message("user", "hi"),))
SMOL = {"temperature": 0.2, "top_p": 0.9, "top_k": 0, "source": "model"}


def test_an_unset_request_takes_the_model_recommendation() -> None:
    model = recommended(temperature=0.7, top_p=0.8, top_k=20)
    req, applied = resolve(REQ, model)
    assert applied == Sampling(0.7, 0.8, 20, "model")
    assert (req.temperature, req.top_p, req.top_k) == (0.7, 0.8, 20)


def test_a_request_that_sets_either_field_is_obeyed_with_openai_meaning() -> None:
    model = recommended(temperature=0.7, top_p=0.8, top_k=20)
    _, applied = resolve(dataclasses.replace(REQ, temperature=0.0), model)
    assert applied == Sampling(0.0, 1.0, 0, "request")
    _, applied = resolve(dataclasses.replace(REQ, top_p=0.5), model)
    assert applied == Sampling(1.0, 0.5, 0, "request")


def test_no_recommendation_means_openai_defaults() -> None:
    _, applied = resolve(REQ, None)
    assert applied == Sampling(1.0, 1.0, 0, "default")


def test_gguf_metadata_is_read_and_bad_values_are_ignored() -> None:
    got = from_gguf({"general.sampling.temp": "0.6", "general.sampling.top_k": "20",
                     "general.sampling.top_p": "0.95"})
    assert got == Sampling(0.6, 0.95, 20, "model")
    assert from_gguf({"general.sampling.temp": "hot", "general.sampling.top_p": "7"}) is None
    assert from_gguf({"general.name": "x"}) is None


def test_top_k_keeps_only_the_k_most_likely_tokens() -> None:
    logits = np.array([5.0, 4.9, 4.8, -1.0, -2.0])
    rng = np.random.default_rng(0)
    seen = {sample(logits, temperature=2.0, top_p=1.0, top_k=2, rng=rng) for _ in range(300)}
    assert seen == {0, 1}
    seen = {sample(logits, temperature=2.0, top_p=1.0, top_k=0, rng=rng) for _ in range(300)}
    assert seen >= {0, 1, 2}


def _attempt(body: dict[str, object]) -> dict[str, object]:
    route = body["rung"]
    assert isinstance(route, dict)
    attempts = route["attempts"]
    assert isinstance(attempts, list)
    return dict(attempts[-1])


def test_the_embedded_model_applies_its_recommendation_and_says_so(smol) -> None:  # type: ignore[no-untyped-def]
    ask = {"model": "rung", "messages": [{"role": "user", "content": "Count to 3."}],
           "max_tokens": 8}
    r = http("POST", f"{smol.url}/v1/chat/completions", ask)
    assert r.status == 200, r.body
    assert _attempt(r.json())["sampling"] == SMOL
    r = http("POST", f"{smol.url}/v1/chat/completions", {**ask, "temperature": 0})
    assert _attempt(r.json())["sampling"] == {"temperature": 0.0, "top_p": 1.0, "top_k": 0,
                                              "source": "request"}


def test_a_tier_config_overrides_the_model_recommendation() -> None:
    cfg = config_of(tiers=[{"name": "smol", "backend": {
        "type": "llama", "model": "smollm2-135m",
        "sampling": {"temperature": 0.0}}}])
    with rung_server(cfg) as server:
        r = http("POST", f"{server.url}/v1/chat/completions", {
            "model": "rung", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert _attempt(r.json())["sampling"] == {"temperature": 0.0, "top_p": 1.0,
                                                  "top_k": 0, "source": "model"}


def test_an_upstream_gets_no_sampling_the_client_did_not_send() -> None:
    b = UpstreamBehaviour(reply="ok", bodies=[])
    with upstream_server(b) as up, \
            rung_server(config_of(tiers=[upstream_tier("up", up.url)])) as server:
        ask = {"model": "rung", "messages": [{"role": "user", "content": "hi"}]}
        http("POST", f"{server.url}/v1/chat/completions", ask)
        http("POST", f"{server.url}/v1/chat/completions", {**ask, "temperature": 0.3})
    assert b.bodies is not None
    assert "temperature" not in b.bodies[0] and "top_p" not in b.bodies[0]
    assert b.bodies[1]["temperature"] == 0.3 and "top_p" not in b.bodies[1]
