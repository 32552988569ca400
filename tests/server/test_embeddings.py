"""``POST /v1/embeddings`` through a real server on loopback, driven by the official
openai SDK: the local all-MiniLM-L6-v2 tier against sentence-transformers' own vectors
(``data/minilm_reference.json``, made by ``data/make_minilm_reference.py`` with torch),
an upstream tier on the devtools upstream, errors, traces, keys and limits."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from rung.backends.embedding import local_missing
from rung.config import Config
from rung.errors import ConfigError
from rung.server.embeddings import EMBEDDINGS
from rung.server.state import CONFIG, STORE
from rung.store.analytics import summarize
from rung.store.trace import Trace
from tests.conftest import (
    LiveServer,
    behaviour,
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)

if local_missing() is not None:
    pytest.skip(f"no local embedding tier: {local_missing()}", allow_module_level=True)

LOCAL = "all-minilm-l6-v2"
UP = "up-embed"
REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
SENTENCES: list[str] = REFERENCE["sentences"]
VECTORS = np.stack([np.frombuffer(base64.b64decode(v), dtype="<f4")
                    for v in REFERENCE["vectors"]])
TOL = 1e-5


@pytest.fixture(scope="module")
def up() -> Iterator[LiveServer]:
    with upstream_server() as server:
        yield server


def _config(up_url: str, **embeddings: Any) -> Config:
    return config_of(tiers=[upstream_tier("up", up_url)], embeddings={
        "cost": {"input_per_mtok": 0.5}, "max_inputs": 64,
        "tiers": [{"name": UP, "base_url": f"{up_url}/v1", "model": "text-embedding-3-small",
                   "cost": {"input_per_mtok": 0.02}}], **embeddings})


@pytest.fixture(scope="module")
def server(up: LiveServer) -> Iterator[LiveServer]:
    with rung_server(_config(up.url)) as s:
        yield s


def _client(server: LiveServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _traces(server: LiveServer) -> list[Trace]:
    return list(server.app[STORE].query())


def _tokens(texts: list[str]) -> int:
    """Tokens the model sees: the package's tokenizer, cut at the model's 256."""
    from tokenizers import Tokenizer

    from rung.routing.embed import model_dir

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=REFERENCE["max_seq_length"])
    tok.no_padding()  # the file asks for padding, which the model masks out
    return sum(len(e.ids) for e in tok.encode_batch(texts))


def test_models_lists_the_minilm_tier(server: LiveServer) -> None:
    ids = [m.id for m in _client(server).models.list()]
    assert ids == ["rung", "up", LOCAL, UP]


def test_sdk_vectors_equal_sentence_transformers(server: LiveServer) -> None:
    """The SDK asks for base64 by default and decodes it; a list of inputs, in order."""
    r = _client(server).embeddings.create(model=LOCAL, input=SENTENCES)
    got = np.array([d.embedding for d in r.data], dtype=np.float64)
    assert [d.index for d in r.data] == list(range(len(SENTENCES)))
    assert got.shape == (len(SENTENCES), 384)
    assert np.abs(got - VECTORS).max() < TOL
    assert r.model == LOCAL
    assert r.usage.prompt_tokens == r.usage.total_tokens == _tokens(SENTENCES)
    assert r.usage.prompt_tokens > 256  # the long one is cut at the model's window


@pytest.mark.parametrize("i", range(len(SENTENCES)))
def test_sdk_float_one_string_equals_sentence_transformers(server: LiveServer, i: int) -> None:
    r = _client(server).embeddings.create(model=LOCAL, input=SENTENCES[i],
                                          encoding_format="float")
    assert len(r.data) == 1
    assert np.abs(np.array(r.data[0].embedding) - VECTORS[i]).max() < TOL
    assert r.usage.prompt_tokens == _tokens([SENTENCES[i]])


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_wire_formats(server: LiveServer, fmt: str) -> None:
    """base64 is little-endian float32, as OpenAI sends it; float is a JSON list."""
    r = http("POST", f"{server.url}/v1/embeddings",
             {"model": LOCAL, "input": SENTENCES[:2], "encoding_format": fmt})
    assert r.status == 200, r.body[:300]
    assert r.headers["x-rung-tier"] == LOCAL
    body = r.json()
    assert body["object"] == "list" and set(body["usage"]) == {"prompt_tokens", "total_tokens"}
    assert [d["object"] for d in body["data"]] == ["embedding", "embedding"]
    emb = body["data"][1]["embedding"]
    vec = np.frombuffer(base64.b64decode(emb), dtype="<f4") if fmt == "base64" \
        else np.array(emb)
    assert isinstance(emb, str if fmt == "base64" else list)
    assert np.abs(vec - VECTORS[1]).max() < TOL


def test_dimensions_384_is_accepted(server: LiveServer) -> None:
    r = _client(server).embeddings.create(model=LOCAL, input="a", dimensions=384,
                                          encoding_format="float")
    assert np.abs(np.array(r.data[0].embedding) - VECTORS[2]).max() < TOL


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ({"model": LOCAL, "input": []}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": ""}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": ["a", ""]}, 400, "invalid_value", "input[1]"),
    ({"model": LOCAL, "input": [1, 2, 3]}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": [[1, 2], [3]]}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": 5}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": ["a", 5]}, 400, "invalid_value", "input[1]"),
    ({"model": LOCAL, "input": ["a"] * 65}, 400, "invalid_value", "input"),
    ({"model": LOCAL, "input": "a", "dimensions": 256}, 400, "invalid_value", "dimensions"),
    ({"model": LOCAL, "input": "a", "dimensions": 0}, 400, "invalid_value", "dimensions"),
    ({"model": LOCAL, "input": "a", "encoding_format": "int8"}, 400, "invalid_value",
     "encoding_format"),
    ({"model": LOCAL, "input": "a", "stream": True}, 400, "unknown_parameter", "stream"),
    ({"input": "a"}, 400, "invalid_value", "model"),
    ({"model": "nope", "input": "a"}, 404, "model_not_found", "model"),
    ({"model": "rung", "input": "a"}, 404, "model_not_found", "model"),
], ids=["empty-list", "empty-string", "empty-item", "token-array", "token-arrays",
        "number", "mixed", "too-many", "dimensions", "dimensions-0", "encoding",
        "unknown-field", "no-model", "unknown-model", "chat-alias"])
def test_bad_requests_get_openai_errors(server: LiveServer, body: dict[str, Any],
                                        status: int, code: str, param: str) -> None:
    r = http("POST", f"{server.url}/v1/embeddings", body)
    assert r.status == status, r.body[:300]
    err = r.json()["error"]
    assert (err["code"], err["param"]) == (code, param)
    assert err["type"] == "invalid_request_error" and err["message"]


def test_sdk_raises_the_sdk_errors(server: LiveServer) -> None:
    client = _client(server)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="a")
    with pytest.raises(openai.BadRequestError, match="Matryoshka"):
        client.embeddings.create(model=LOCAL, input="a", dimensions=128)
    with pytest.raises(openai.BadRequestError, match="token-id arrays"):
        client.embeddings.create(model=LOCAL, input=[[101, 102]])


def test_malformed_json_is_a_400(server: LiveServer) -> None:
    r = http("POST", f"{server.url}/v1/embeddings", b"{nope")
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_json"


def test_a_body_over_the_limit_is_a_413(up: LiveServer) -> None:
    cfg = config_of(tiers=[upstream_tier("up", up.url)], server={"max_body_bytes": 1024})
    with rung_server(cfg) as s:
        r = http("POST", f"{s.url}/v1/embeddings", {"model": LOCAL, "input": "x" * 2000})
        assert r.status == 413 and r.json()["error"]["code"] == "request_too_large"
        assert [t.status for t in s.app[STORE].query()] == ["request_too_large"]


def test_every_request_leaves_one_trace_marked_embeddings(server: LiveServer) -> None:
    before = {t.id for t in _traces(server)}
    _client(server).embeddings.create(model=LOCAL, input=SENTENCES[:3])
    http("POST", f"{server.url}/v1/embeddings", {"model": LOCAL, "input": []})
    new = sorted((t for t in _traces(server) if t.id not in before), key=lambda t: t.time)
    assert len(new) == 2
    ok, bad = new
    assert ok.endpoint == bad.endpoint == "embeddings"
    assert (ok.status, ok.model, ok.tier, ok.stream) == ("ok", LOCAL, LOCAL, False)
    assert ok.input_tokens == _tokens(SENTENCES[:3]) and ok.output_tokens == 0
    assert ok.cost == pytest.approx(ok.input_tokens * 0.5 / 1e6)
    assert ok.route["inputs"] == 3 and ok.route["dimensions"] == 384
    assert ok.route["encoding_format"] == "base64" and ok.latency_ms > 0
    assert ok.messages is None and ok.response is None and len(ok.prompt_hash) == 32
    assert (bad.status, bad.model) == ("invalid_value", "")
    # The dashboard's chat charts leave them out and count them apart.
    s = summarize(new, config=server.app[CONFIG], since=new[0].time - 1,
                  until=time.time() + 1)
    assert s["totals"]["requests"] == 0
    assert s["embeddings"] == {"requests": 2, "errors": 1, "input_tokens": ok.input_tokens,
                               "cost": ok.cost}


def test_metrics_count_the_tier(server: LiveServer) -> None:
    _client(server).embeddings.create(model=LOCAL, input="count me")
    text = http("GET", f"{server.url}/metrics").body.decode()
    assert f'rung_requests_total{{status="ok",tier="{LOCAL}"}}' in text


def test_upstream_tier_passes_through(server: LiveServer, up: LiveServer) -> None:
    client = _client(server)
    r = client.embeddings.create(model=UP, input=["one two", "three"], dimensions=16,
                                 user="u1")
    sent = behaviour(up).last_body
    assert sent == {"model": "text-embedding-3-small", "input": ["one two", "three"],
                    "encoding_format": "float", "dimensions": 16, "user": "u1"}
    assert r.model == UP and [len(d.embedding) for d in r.data] == [16, 16]
    assert r.usage.prompt_tokens == 3  # the upstream's count
    floats = client.embeddings.create(model=UP, input=["one two", "three"], dimensions=16,
                                      encoding_format="float")
    assert np.allclose([d.embedding for d in floats.data], [d.embedding for d in r.data])
    # token-id arrays are the upstream's to read
    toks = client.embeddings.create(model=UP, input=[[1, 2, 3]])
    assert behaviour(up).last_body["input"] == [[1, 2, 3]]  # type: ignore[index]
    assert toks.usage.prompt_tokens == 3 and len(toks.data[0].embedding) == 8
    t = max(_traces(server), key=lambda t: t.time)
    assert (t.tier, t.input_tokens, t.endpoint) == (UP, 3, "embeddings")
    assert t.cost == pytest.approx(3 * 0.02 / 1e6)


@pytest.mark.parametrize(("upstream_status", "status", "code"),
                         [(400, 400, "upstream_rejected"), (500, 502, "upstream_error")])
def test_upstream_errors(server: LiveServer, up: LiveServer, upstream_status: int,
                         status: int, code: str) -> None:
    behaviour(up).fail_status = upstream_status
    try:
        r = http("POST", f"{server.url}/v1/embeddings", {"model": UP, "input": "x"})
    finally:
        behaviour(up).fail_status = None
    assert r.status == status and r.json()["error"]["code"] == code
    assert "scripted failure" in r.json()["error"]["message"]


def test_upstream_down_is_a_502(up: LiveServer) -> None:
    cfg = config_of(tiers=[upstream_tier("up", up.url)], embeddings={"enabled": False, "tiers": [
        {"name": UP, "base_url": "http://127.0.0.1:9/v1", "model": "m"}]})
    with rung_server(cfg) as s:
        r = http("POST", f"{s.url}/v1/embeddings", {"model": UP, "input": "x"})
        assert r.status == 502 and r.json()["error"]["code"] == "backend_unavailable"
        # without the local tier, its id is unknown and not listed
        assert [m["id"] for m in http("GET", f"{s.url}/v1/models").json()["data"]] == \
            ["rung", "up", UP]
        assert http("POST", f"{s.url}/v1/embeddings",
                    {"model": LOCAL, "input": "x"}).status == 404


def test_keys_limits_and_budgets_count_embeddings(
        up: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rung.cli.main import main

    db = tmp_path / "rung.db"

    def create(*args: str) -> str:
        assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
        return capsys.readouterr().out.strip().split("\t")[1]

    cfg = config_of(server={"auth": "required"}, tiers=[upstream_tier("up", up.url)],
                    embeddings={"cost": {"input_per_mtok": 1e6}})  # $1 a token
    with rung_server(cfg, store=db) as server:
        with pytest.raises(openai.AuthenticationError):
            _client(server).embeddings.create(model=LOCAL, input="hi")
        tpm = _client(server, create("--name", "tpm", "--tpm", "10"))
        r = tpm.embeddings.create(model=LOCAL, input="one two three four five six seven eight")
        assert r.usage.prompt_tokens >= 10
        with pytest.raises(openai.RateLimitError, match="tokens per minute"):
            tpm.embeddings.create(model=LOCAL, input="again")
        budget = _client(server, create("--name", "budget", "--daily-budget", "3"))
        budget.embeddings.create(model=LOCAL, input="hello")  # [CLS] hello [SEP]: $3
        with pytest.raises(openai.RateLimitError, match="budget"):
            budget.embeddings.create(model=LOCAL, input="hello")
        statuses = sorted(t.status for t in server.app[STORE].query())
        assert statuses == ["budget_exceeded", "invalid_api_key", "ok", "ok",
                            "rate_limit_exceeded"]


def test_a_full_queue_is_a_503_with_retry_after(up: LiveServer) -> None:
    cfg = _config(up.url, threads=1, queue_size=0, preload=True)
    long = ["word " * 300] * 48  # a second or so of forward passes on one thread
    with rung_server(cfg) as server:
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)

        local = server.app[EMBEDDINGS].tiers[LOCAL]

        async def both() -> list[Any]:
            first = asyncio.create_task(client.embeddings.create(model=LOCAL, input=long))
            for _ in range(200):  # until the server holds the first (bounded: 10 s)
                if getattr(local, "pending", 0) >= 1:
                    break
                await asyncio.sleep(0.05)
            second = client.embeddings.with_raw_response.create(model=LOCAL, input="x")
            return list(await asyncio.gather(first, second, return_exceptions=True))

        first, second = asyncio.run(both())
        assert len(first.data) == 48
        assert isinstance(second, openai.APIStatusError) and second.status_code == 503
        assert second.body["code"] == "overloaded"  # type: ignore[index]
        assert second.response.headers["retry-after"] == "1"
        # and the tier serves again once the queue drains
        assert len(_client(server).embeddings.create(model=LOCAL, input="x").data) == 1


@pytest.mark.slow
def test_healthz_stays_fast_while_the_local_tier_loads_and_embeds(up: LiveServer) -> None:
    from tests.server.test_loop_free import Probe, best_of_rounds, probing

    batch = [f"sentence {i} " + "with quite a few words in it " * 20 for i in range(64)]

    def one_round() -> Probe:  # a fresh server each round: the model loads in the window
        with rung_server(_config(up.url)) as server, probing(server.url) as probe:
            r = http("POST", f"{server.url}/v1/embeddings", {"model": LOCAL, "input": batch})
            assert r.status == 200, r.body[:300]
        return probe

    best_of_rounds(one_round)


def test_an_otlp_span_per_request_named_embeddings(up: LiveServer, tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from rung.server.app import create_app
    from rung.store.sqlite import SqliteStore
    from rung.telemetry import Telemetry
    from tests.conftest import live, wait_ready

    exporter = InMemorySpanExporter()
    cfg = _config(up.url)
    app = create_app(cfg, store=SqliteStore(tmp_path / "t.db"),
                     telemetry=Telemetry(cfg, exporter))
    with live(app) as s:
        wait_ready(s.url)
        assert http("POST", f"{s.url}/v1/embeddings",
                    {"model": UP, "input": ["one two", "three"]}).status == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == f"embeddings {UP}"
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.response.model"] == UP
    assert span.attributes["gen_ai.usage.input_tokens"] == 3


@pytest.mark.parametrize(("embeddings", "match"), [
    ({"local_name": "up"}, "taken by the alias or a chat tier"),
    ({"local_name": "rung"}, "taken by the alias or a chat tier"),
    ({"tiers": [{"name": LOCAL, "base_url": "http://x/v1", "model": "m"}]}, "unique"),
])
def test_config_rejects_clashing_names(embeddings: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_of(tiers=[upstream_tier("up", "http://x")], embeddings=embeddings)


def test_config_reads_the_upstream_key_from_the_environment() -> None:
    from rung.config import parse_config

    cfg = parse_config({"embeddings": {"tiers": [
        {"name": UP, "base_url": "http://x/v1", "model": "m", "api_key_env": "EMB_KEY"}]}},
        environ={"EMB_KEY": "sk-1"})
    assert cfg.embeddings.tiers[0].api_key == "sk-1"
    with pytest.raises(ConfigError, match="EMB_KEY"):
        parse_config({"embeddings": {"tiers": [
            {"name": UP, "base_url": "http://x/v1", "model": "m", "api_key_env": "EMB_KEY"}]}},
            environ={})
