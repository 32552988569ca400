"""Bad input gets a clear OpenAI-style error, and the server keeps serving."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.conftest import LiveServer, body_with, config_of, http, rung_server

GOOD = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 2, "temperature": 0}


def _with(**kw: object) -> dict[str, object]:
    return body_with(GOOD, **kw)


CASES = [
    # (name, body, status, param, code)
    ("malformed json", b'{"model": "x", ', 400, None, "invalid_json"),
    ("not an object", b"[1, 2]", 400, None, "invalid_json"),
    ("missing messages", _with(messages=None), 400, "messages", "invalid_value"),
    ("missing model", _with(model=None), 400, "model", "invalid_value"),
    ("empty messages", _with(messages=[]), 400, "messages", "invalid_value"),
    ("bad role", _with(messages=[{"role": "robot", "content": "x"}]), 400,
     "messages[0].role", "invalid_value"),
    ("content wrong type", _with(messages=[{"role": "user", "content": 5}]), 400,
     "messages[0].content", "invalid_value"),
    ("temperature wrong type", _with(temperature="hot"), 400, "temperature", "invalid_value"),
    ("temperature out of range", _with(temperature=3.5), 400, "temperature", "invalid_value"),
    ("top_p out of range", _with(top_p=0), 400, "top_p", "invalid_value"),
    ("max_tokens zero", _with(max_tokens=0), 400, "max_tokens", "invalid_value"),
    ("max_tokens string", _with(max_tokens="10"), 400, "max_tokens", "invalid_value"),
    ("too many stops", _with(stop=["a", "b", "c", "d", "e"]), 400, "stop", "invalid_value"),
    ("top_logprobs too big", _with(logprobs=True, top_logprobs=50), 400, "top_logprobs",
     "invalid_value"),
    ("n > 1", _with(n=2), 400, "n", "invalid_value"),
    ("unknown parameter", _with(modalities=["text"]), 400, "modalities", "unknown_parameter"),
    ("unknown model", _with(model="gpt-9"), 404, "model", "model_not_found"),
    ("context too long", _with(messages=[{"role": "user", "content": "hello " * 3000}]), 400,
     "messages", "context_length_exceeded"),
    ("max_tokens beyond context", _with(max_tokens=100000), 400, "messages",
     "context_length_exceeded"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "body", "status", "param", "code"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(smol: LiveServer, name: str, body: bytes | dict[str, object], status: int,
                   param: str | None, code: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = http("POST", f"{smol.url}/v1/chat/completions", raw)
    assert r.status == status, r.body
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["type"]
    assert err["param"] == param and err["code"] == code
    ok = http("POST", f"{smol.url}/v1/chat/completions", GOOD)
    assert ok.status == 200 and ok.json()["choices"][0]["message"]["content"] is not None


@pytest.mark.slow
def test_streaming_bad_input_keeps_status(smol: LiveServer) -> None:
    r = http("POST", f"{smol.url}/v1/chat/completions",
             _with(stream=True, messages=[{"role": "user", "content": "x " * 5000}]))
    assert r.status == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_body_over_limit_is_413() -> None:
    cfg = config_of(server={"max_body_bytes": 4096},
                    tiers=[{"name": "up", "backend": {"type": "openai", "base_url":
                                                      "http://127.0.0.1:9/v1", "model": "m"}}])
    with rung_server(cfg) as server:
        big = _with(model="up", messages=[{"role": "user", "content": "x" * 10000}])
        r = http("POST", f"{server.url}/v1/chat/completions", big)
        assert r.status == 413 and r.json()["error"]["code"] == "request_too_large"
        r = http("GET", f"{server.url}/nope")
        assert r.status == 404 and r.json()["error"]["code"] == "not_found"
        r = http("GET", f"{server.url}/v1/chat/completions")
        assert r.status == 405 and "error" in r.json()


def test_default_limit_is_8_mib() -> None:
    cfg = config_of(tiers=[{"name": "up", "backend": {"type": "openai", "base_url":
                                                      "http://127.0.0.1:9/v1", "model": "m"}}])
    with rung_server(cfg) as server:
        body = b'{"model": "up", "messages": [{"role": "user", "content": "' + \
            b"x" * (8 * 1024 * 1024) + b'"}]}'
        assert http("POST", f"{server.url}/v1/chat/completions", body).status == 413


@pytest.mark.slow
def test_disconnect_mid_stream_stops_generation(smol: LiveServer) -> None:
    body = json.dumps(_with(stream=True, max_tokens=1500, temperature=1.0, seed=1,
                            messages=[{"role": "user", "content": "Write a very long story."}]))
    host, port = smol.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 f"application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
    received = b""
    while received.count(b"data:") < 4:
        received += sock.recv(4096)
    sock.close()
    from rung.server.app import GATEWAY

    llama = smol.app[GATEWAY].backends["smollm2-135m"]
    deadline = time.monotonic() + 5
    while llama.running and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.02)
    assert llama.running == 0, "generation kept running after the client left"  # type: ignore[attr-defined]
    assert llama.in_flight == 0  # type: ignore[attr-defined]
    metrics = http("GET", f"{smol.url}/metrics").body.decode()
    assert 'rung_requests_total{status="client_closed",tier="smollm2-135m"}' in metrics


@pytest.mark.slow
def test_full_queue_gets_503_with_retry_after() -> None:
    cfg = config_of(tiers=[{"name": "s", "backend": {"type": "llama", "queue_size": 0}}])
    with rung_server(cfg) as server:
        long = _with(model="s", max_tokens=300, temperature=0,  # greedy counting runs long
                     messages=[{"role": "user", "content": "Count from 1 to 500, one "
                                "number per line."}])
        results: list[int] = []
        t = threading.Thread(target=lambda: results.append(
            http("POST", f"{server.url}/v1/chat/completions", long).status))
        t.start()
        from rung.server.app import GATEWAY

        llama = server.app[GATEWAY].backends["s"]
        while not llama.in_flight:  # type: ignore[attr-defined]
            time.sleep(0.01)
        r = http("POST", f"{server.url}/v1/chat/completions", _with(model="s"))
        t.join(timeout=60)
        assert r.status == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"
        assert results == [200]
        assert http("POST", f"{server.url}/v1/chat/completions", _with(model="s")).status == 200
