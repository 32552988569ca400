"""The gateway on the real embedded model, driven by the official openai SDK."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

Q = [{"role": "user", "content": "What is 17+25?"}]


def _client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_lists_embedded_model_and_alias(smol: LiveServer) -> None:
    ids = [m.id for m in _client(smol).models.list()]
    assert ids == ["rung", "smollm2-135m", "all-minilm-l6-v2"]  # the last: /v1/embeddings


def test_non_streaming(smol: LiveServer) -> None:
    r = _client(smol).chat.completions.create(model="smollm2-135m", messages=Q,  # type: ignore[arg-type]
                                             max_tokens=24, temperature=0)
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in {"stop", "length"}
    assert r.model == "smollm2-135m"
    assert r.usage is not None and r.usage.prompt_tokens > 5
    assert 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streaming_equals_non_streaming_and_reports_usage(smol: LiveServer) -> None:
    client = _client(smol)
    full = client.chat.completions.create(model="rung", messages=Q, max_tokens=24,  # type: ignore[arg-type]
                                          temperature=0)
    chunks = list(client.chat.completions.create(
        model="rung", messages=Q, max_tokens=24, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens  # type: ignore[union-attr]


async def test_async_client_concurrent_requests_do_not_corrupt_each_other(
        smol: LiveServer) -> None:
    client = openai.AsyncOpenAI(base_url=f"{smol.url}/v1", api_key="unused", max_retries=0)
    prompts = ["What is the capital of France?", "Name a color.", "What is 2+2?"]

    async def ask(p: str) -> str:
        r = await client.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": p}],
            max_tokens=16, temperature=0)
        return r.choices[0].message.content or ""

    alone = [await ask(p) for p in prompts]
    together = await asyncio.gather(*(ask(p) for p in prompts * 2))
    await client.close()
    assert list(together) == alone * 2


def test_multi_turn(smol: LiveServer) -> None:
    client = _client(smol)
    one = client.chat.completions.create(model="rung", messages=Q, max_tokens=8,  # type: ignore[arg-type]
                                         temperature=0)
    messages = [{"role": "system", "content": "You are terse."}, *Q,
                {"role": "assistant", "content": one.choices[0].message.content},
                {"role": "user", "content": "And 17+26?"}]
    two = client.chat.completions.create(model="rung", messages=messages, max_tokens=8,  # type: ignore[arg-type]
                                         temperature=0)
    assert two.choices[0].message.content
    assert two.usage.prompt_tokens > one.usage.prompt_tokens + 8  # type: ignore[union-attr]


def test_max_tokens_stop_seed(smol: LiveServer) -> None:
    client = _client(smol)
    count = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]
    r = client.chat.completions.create(model="rung", messages=count, max_tokens=5,  # type: ignore[arg-type]
                                       temperature=0)
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"  # type: ignore[union-attr]
    full = client.chat.completions.create(model="rung", messages=count, max_tokens=40,  # type: ignore[arg-type]
                                          temperature=0).choices[0].message.content or ""
    assert "5" in full
    cut = client.chat.completions.create(model="rung", messages=count, max_tokens=40,  # type: ignore[arg-type]
                                         temperature=0, stop=["5"])
    assert cut.choices[0].message.content == full[: full.index("5")]
    assert cut.choices[0].finish_reason == "stop"
    story = [{"role": "user", "content": "Write a sentence about a cat."}]
    a, b, c = (client.chat.completions.create(model="rung", messages=story, max_tokens=20,  # type: ignore[arg-type]
                                              temperature=1.0, seed=s).choices[0].message.content
               for s in (7, 7, 8))
    assert a == b and a != c


def test_logprobs(smol: LiveServer) -> None:
    r = _client(smol).chat.completions.create(
        model="rung", messages=Q, max_tokens=10, temperature=0, logprobs=True, top_logprobs=3)  # type: ignore[arg-type]
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == r.usage.completion_tokens  # type: ignore[union-attr]
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.logprob <= 0
        tops = [x.logprob for x in t.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert t.top_logprobs[0].token == t.token  # greedy picks the most likely token
        assert abs(tops[0] - t.logprob) < 1e-5


def test_json_mode_and_schema(smol: LiveServer) -> None:
    client = _client(smol)
    r = client.chat.completions.create(
        model="rung", max_tokens=300, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give 17+25 as JSON with the key answer."}])
    assert r.choices[0].finish_reason == "stop"
    json.loads(r.choices[0].message.content or "")
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"], "additionalProperties": False}
    r = client.chat.completions.create(
        model="rung", max_tokens=40, temperature=0, messages=Q,  # type: ignore[arg-type]
        response_format={"type": "json_schema",
                         "json_schema": {"name": "a", "schema": schema}})
    assert isinstance(json.loads(r.choices[0].message.content or "")["answer"], int)


def test_route_is_reported(smol: LiveServer) -> None:
    raw = _client(smol).chat.completions.with_raw_response.create(
        model="rung", messages=Q, max_tokens=4, temperature=0)  # type: ignore[arg-type]
    assert raw.headers["x-rung-tier"] == "smollm2-135m"
    assert "reason=no-thresholds" in raw.headers["x-rung-route"]
    body = json.loads(raw.http_response.text)
    assert body["rung"]["tier"] == "smollm2-135m"
    attempt = body["rung"]["attempts"][0]
    assert attempt["queue_ms"] >= 0 and attempt["generate_ms"] > 0  # stage latencies
