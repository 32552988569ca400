"""Keys, limits and budgets through a real server (auth on), and the limiter's clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from rung.auth.keys import ApiKey
from rung.auth.limits import Limiter, day_start, next_month
from rung.cli.main import main
from rung.errors import RateLimited
from tests.conftest import config_of, http, rung_server, upstream_server, upstream_tier

BODY = {"model": "up", "messages": [{"role": "user", "content": "one two three"}]}


def _create(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
    key_id, secret = capsys.readouterr().out.strip().split("\t")
    return key_id, secret


def test_auth_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "rung.db"
    with upstream_server() as up:
        cfg = config_of(server={"auth": "required"},
                        tiers=[upstream_tier("up", up.url) | {"cost": {"input_per_mtok": 1e6}}])
        with rung_server(cfg, store=db) as server:
            url = f"{server.url}/v1/chat/completions"

            def call(secret: str | None) -> tuple[int, dict[str, object], dict[str, str]]:
                h = {"Authorization": f"Bearer {secret}"} if secret else {}
                r = http("POST", url, BODY, headers=h)
                return r.status, r.json(), r.headers

            status, body, _ = call(None)
            assert status == 401 and body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
            assert call("rk-wrong")[0] == 401
            kid, secret = _create(db, capsys, "--name", "app", "--rpm", "3")
            assert call(secret)[0] == 200
            assert http("GET", f"{server.url}/v1/models").status == 401
            assert http("GET", f"{server.url}/v1/models",
                        headers={"Authorization": f"Bearer {secret}"}).status == 200
            assert http("GET", f"{server.url}/metrics",
                        headers={"Authorization": f"Bearer {secret}"}).status == 403
            _, admin = _create(db, capsys, "--name", "ops", "--admin")
            assert http("GET", f"{server.url}/metrics",
                        headers={"Authorization": f"Bearer {admin}"}).status == 200
            assert http("GET", f"{server.url}/healthz").status == 200  # liveness stays open
            # over the limit: 3 requests per minute
            assert [call(secret)[0] for _ in range(2)] == [200, 200]
            status, body, headers = call(secret)
            assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"  # type: ignore[index]
            assert int(headers["retry-after"]) >= 1
            # over budget: 3 prompt tokens at 1 per token = cost 3 per request
            _, poor = _create(db, capsys, "--name", "poor", "--daily-budget", "5")
            assert [call(poor)[0] for _ in range(3)] == [200, 200, 429]
            status, body, headers = call(poor)
            assert body["error"]["code"] == "budget_exceeded"  # type: ignore[index]
            # revoked: 401 at once
            assert main(["keys", "revoke", "--store", f"sqlite:///{db}", kid]) == 0
            capsys.readouterr()
            status, body, _ = call(secret)
            assert status == 401 and body["error"]["code"] == "revoked_api_key"  # type: ignore[index]
    assert main(["keys", "list", "--store", f"sqlite:///{db}"]) == 0
    listing = capsys.readouterr().out
    assert "revoked" in listing and "rk-" not in listing  # secrets are never shown again
    assert secret.encode() not in db.read_bytes()


def test_auth_defaults_follow_the_bind_address() -> None:
    from rung.auth.access import auth_required

    assert not auth_required("auto", "127.0.0.1")
    assert auth_required("auto", "0.0.0.0")
    assert auth_required("required", "127.0.0.1")
    assert not auth_required("off", "0.0.0.0")


KEY = ApiKey(id="k", name="n", created=0, revoked=None, admin=False, rpm=2, tpm=100,
             daily_budget=1.0, monthly_budget=None)


def test_limiter_windows_and_budget_rollover() -> None:
    spent = {"k": 0.0}
    lim = Limiter(lambda key_id, since: spent[key_id])
    t0 = day_start(1_800_000_000) + 3600
    lim.admit(KEY, t0)
    lim.admit(KEY, t0 + 1)
    with pytest.raises(RateLimited) as info:
        lim.admit(KEY, t0 + 2)
    assert 57 <= info.value.retry_after_s <= 58
    lim.admit(KEY, t0 + 60.5)  # the first request left the window
    lim.record("k", tokens=150, cost=0.2, now=t0 + 61)
    with pytest.raises(RateLimited, match="tokens per minute"):
        lim.admit(KEY, t0 + 62)
    lim.record("k", tokens=0, cost=0.9, now=t0 + 200)
    with pytest.raises(RateLimited) as info:
        lim.admit(KEY, t0 + 200)
    assert info.value.code == "budget_exceeded"
    assert info.value.retry_after_s == pytest.approx(day_start(t0) + 86400 - (t0 + 200))
    lim.admit(KEY, day_start(t0) + 86400 + 1)  # a new UTC day
    assert next_month(1_800_000_000) > 1_800_000_000
