"""Hardening: header limits, no CORS by default, and no secrets in logs or traces."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import config_of, http, live, rung_server, upstream_tier

UPSTREAM_TOKEN = "sk-upstream-secret-token-1234567890"


def test_header_limits_and_no_cors() -> None:
    cfg = config_of(tiers=[upstream_tier("up", "http://127.0.0.1:9")])
    with rung_server(cfg) as server:
        assert http("GET", f"{server.url}/healthz", headers={"X-Big": "a" * 9000}).status == 400
        many = {f"X-H{i}": "v" for i in range(200)}
        assert http("GET", f"{server.url}/healthz", headers=many).status == 400
        r = http("GET", f"{server.url}/v1/models", headers={"Origin": "https://evil.example"})
        assert r.status == 200 and "access-control-allow-origin" not in r.headers
        r = http("OPTIONS", f"{server.url}/v1/chat/completions",
                 headers={"Origin": "https://evil.example",
                          "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers


def test_no_secrets_in_logs_or_traces(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    async def upstream(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(status=500, text="upstream is down")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream)
    db = tmp_path / "t.db"
    caplog.set_level(logging.DEBUG)
    with live(app) as up:
        cfg = config_of(server={"auth": "required"}, tiers=[
            upstream_tier("up", up.url, api_key=UPSTREAM_TOKEN, retries=1, backoff_s=0.0)])
        with rung_server(cfg, store=db) as server:
            from rung.auth.keys import KeyStore

            keys = KeyStore(db)
            _, client_secret = keys.create("app")
            keys.close()
            r = http("POST", f"{server.url}/v1/chat/completions",
                     {"model": "up", "messages": [{"role": "user", "content": "hi"}]},
                     headers={"Authorization": f"Bearer {client_secret}"})
            assert r.status == 502
            assert UPSTREAM_TOKEN not in r.body.decode()
    assert seen and all(s == f"Bearer {UPSTREAM_TOKEN}" for s in seen)  # it was sent upstream
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    for secret in (UPSTREAM_TOKEN, client_secret):
        assert secret.encode() not in stored
        assert secret not in caplog.text
    assert UPSTREAM_TOKEN not in repr(cfg)
