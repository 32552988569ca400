"""Keys, limits and budgets through a real server (auth on), and the limiter's clock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rung.auth import access as access_mod
from rung.auth.access import Access
from rung.auth.keys import ApiKey, KeyStore
from rung.auth.limits import SETTLE_S, Limiter, day_start, month_start, next_month
from rung.cli.main import main
from rung.errors import AuthError, RateLimited
from tests.conftest import config_of, http, rung_server, upstream_server, upstream_tier

BODY = {"model": "up", "messages": [{"role": "user", "content": "one two three"}]}


def _create(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
    key_id, secret = capsys.readouterr().out.strip().split("\t")
    return key_id, secret


def test_auth_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access_mod, "KEY_TTL_S", 0.3)  # how long a revoked key may live on
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
            # revoked: 401 once the server's memory of the key is KEY_TTL_S old
            assert main(["keys", "revoke", "--store", f"sqlite:///{db}", kid]) == 0
            capsys.readouterr()
            time.sleep(0.3)
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
    lim = Limiter(lambda key_id, since, until: spent[key_id])
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


def _queries(conn: sqlite3.Connection) -> list[str]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    return seen


def test_key_lookups_are_remembered_for_a_bounded_time(tmp_path: Path) -> None:
    db = tmp_path / "rung.db"
    store = KeyStore(db)
    key, secret = store.create("app")
    access = Access(db, key_ttl_s=0.2)
    try:
        seen = _queries(access.keys._conn)
        auth = f"Bearer {secret}"
        assert [access.authenticate(auth).id for _ in range(50)] == [key.id] * 50
        for _ in range(50):  # a wrong key, retried, is remembered as unknown
            with pytest.raises(AuthError):
                access.authenticate("Bearer rk-wrong")
        assert len(seen) == 2  # one read per key, not one per request
        store.revoke(key.id)  # as `rung keys revoke` does, from another connection
        assert access.authenticate(auth).revoked is None  # remembered...
        time.sleep(0.25)
        with pytest.raises(AuthError, match="revoked"):  # ...for at most the TTL
            access.authenticate(auth)
        _, fresh = store.create("new")  # a new key works at once
        assert access.authenticate(f"Bearer {fresh}").name == "new"
    finally:
        access.close()
        store.close()


def test_stored_spend_is_read_once_per_period_and_not_counted_twice() -> None:
    reads: list[tuple[str, float, float]] = []
    jobs: list[Callable[[], None]] = []

    def spent_since(key_id: str, since: float, until: float) -> float:
        reads.append((key_id, since, until))
        return 0.6

    lim = Limiter(spent_since, run=jobs.append)  # reads run when the test says so
    budget = ApiKey(id="b", name="n", created=0, revoked=None, admin=False, rpm=None,
                    tpm=None, daily_budget=1.0, monthly_budget=10.0)
    t0 = day_start(1_800_000_000) + 3600
    lim.admit(budget, t0)  # the read is under way: the key is held to what is counted here
    lim.record("b", tokens=1, cost=0.3, now=t0 + 1)
    lim.admit(budget, t0 + 2)
    assert len(jobs) == 2  # day and month, each started once
    for job in jobs:
        job()
    assert sorted(reads) == [("b", month_start(t0), t0 - SETTLE_S),
                             ("b", day_start(t0), t0 - SETTLE_S)]
    lim.record("b", tokens=1, cost=0.05, now=t0 + 3)
    lim.admit(budget, t0 + 4)  # 0.6 stored + 0.35 here < 1.0
    lim.record("b", tokens=1, cost=0.1, now=t0 + 5)
    with pytest.raises(RateLimited) as info:
        lim.admit(budget, t0 + 6)
    assert info.value.code == "budget_exceeded"
    jobs.clear()
    lim.admit(ApiKey(id="free", name="n", created=0, revoked=None, admin=False, rpm=None,
                     tpm=None, daily_budget=None, monthly_budget=None), t0)
    assert jobs == []  # a key without budgets never reads the store
    lim.admit(budget, day_start(t0) + 86400 + 5)  # a new UTC day: its spend is read anew
    assert len(jobs) == 1
