"""Every request leaves exactly one trace, on real SQLite, through a real server."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from rung.cli.main import main
from rung.devtools.upstream import UpstreamBehaviour
from rung.store.sqlite import MIGRATIONS, SqliteStore, migrate
from rung.store.trace import Trace
from tests.conftest import config_of, http, rung_server, upstream_server, upstream_tier

COST0 = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
COST1 = {"input_per_mtok": 10.0, "output_per_mtok": 20.0}


async def _fire(url: str, n: int, conc: int = 16) -> list[int]:
    statuses: list[int] = []
    sem = asyncio.Semaphore(conc)

    async def one(i: int, s: aiohttp.ClientSession) -> None:
        body = {"model": "rung", "messages": [{"role": "user", "content": f"q{i} a b"}]}
        if i % 5 == 0:  # every fifth asks for JSON: tier 0's JSON check rejects it
            body["response_format"] = {"type": "json_object"}
        async with sem, s.post(f"{url}/v1/chat/completions", json=body) as r:
            await r.read()
            statuses.append(r.status)

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(one(i, s) for i in range(n)))
    return statuses


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_500(traces: list[Trace], metrics: str) -> None:
    """What 500 requests through the 2-tier config (every fifth asks for JSON, which the
    small tier's JSON check rejects) must leave behind, on any store."""
    assert len(traces) == 500 and len({t.id for t in traces}) == 500
    by_tier = {"small": [t for t in traces if t.tier == "small"],
               "big": [t for t in traces if t.tier == "big"]}
    assert (len(by_tier["small"]), len(by_tier["big"])) == (400, 100)
    for t in traces:
        assert t.messages is not None
        words = len(t.messages[-1]["content"].split())  # the upstream counts words
        assert t.status == "ok" and t.input_tokens == words
        if t.tier == "small":
            assert t.output_tokens == 3 and not t.escalated
            assert t.cost == pytest.approx((words * 1.0 + 3 * 2.0) / 1e6)
        else:
            assert t.output_tokens == 2 and t.escalated
            # both tiers' generations are paid for
            assert t.cost == pytest.approx((words * 1.0 + 3 * 2.0 + words * 10.0 + 2 * 20.0)
                                           / 1e6)
            assert [a["outcome"] for a in t.route["attempts"]] == ["rejected", "answered"]
            first = t.route["attempts"][0]  # stage latencies: generation, verification
            assert first["answer"] == "plain words here"  # each tier's answer is kept
            assert first["generate_ms"] > 0 and first["verify_ms"] >= 0 and first["ms"] > 0
    assert _metric(metrics, "rung_requests_total", tier="small", status="ok") == 400
    assert _metric(metrics, "rung_requests_total", tier="big", status="ok") == 100
    assert _metric(metrics, "rung_escalations_total", tier="small", reason="rejected") == 100
    top = sum((t.input_tokens * 10.0 + t.output_tokens * 20.0) / 1e6 for t in traces)
    assert _metric(metrics, "rung_cost_if_top_tier_total") == pytest.approx(top)
    for tier, ts in by_tier.items():
        assert _metric(metrics, "rung_tokens_total", tier=tier, kind="completion") == \
            sum(t.output_tokens for t in ts)
        assert _metric(metrics, "rung_tokens_total", tier=tier, kind="prompt") == \
            sum(t.input_tokens for t in ts)
        assert _metric(metrics, "rung_cost_total", tier=tier) == \
            pytest.approx(sum(t.cost for t in ts))


def test_500_requests_leave_500_exact_traces(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with upstream_server(UpstreamBehaviour(reply="plain words here")) as a, \
            upstream_server(UpstreamBehaviour(reply='{"ok": true}')) as b:
        cfg = config_of(tiers=[upstream_tier("small", a.url) | {
            "cost": COST0, "verifiers": [{"type": "json"}]},
            upstream_tier("big", b.url) | {"cost": COST1}])
        with rung_server(cfg, store=db) as server:
            statuses = asyncio.run(_fire(server.url, 500))
            metrics = http("GET", f"{server.url}/metrics").body.decode()
    assert statuses == [200] * 500
    store = SqliteStore(db)
    traces = list(store.query())
    store.close()
    check_500(traces, metrics)


def test_failures_leave_traces_too(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    cfg = config_of(server={"max_body_bytes": 2048},
                    tiers=[upstream_tier("dead", "http://127.0.0.1:9")])
    with rung_server(cfg, store=db) as server:
        url = f"{server.url}/v1/chat/completions"
        assert http("POST", url, b"{nope").status == 400
        assert http("POST", url, {"model": "x", "messages": [{"role": "user",
                                                              "content": "x"}]}).status == 404
        assert http("POST", url, b"x" * 5000).status == 413
        assert http("POST", url, {"model": "dead", "messages": [
            {"role": "user", "content": "hi"}]}).status == 502
    store = SqliteStore(db)
    statuses = sorted(t.status for t in store.query())
    store.close()
    assert statuses == ["backend_unavailable", "invalid_json", "model_not_found",
                        "request_too_large"]


def test_redaction(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with upstream_server(UpstreamBehaviour(reply="hidden words")) as up, \
            upstream_server(UpstreamBehaviour(reply='{"a": 1}')) as big:
        cfg = config_of(store={"redact": True}, tiers=[
            upstream_tier("up", up.url) | {"verifiers": [{"type": "json"}]},
            upstream_tier("big", big.url)])
        with rung_server(cfg, store=db) as server:
            r = http("POST", f"{server.url}/v1/chat/completions",
                     {"model": "rung", "messages": [{"role": "user", "content": "secret"}],
                      "response_format": {"type": "json_object"}})
            assert r.status == 200 and "hidden" not in r.body.decode()  # not in the body
    raw = db.read_bytes() + (db.parent / "t.db-wal").read_bytes() \
        if (db.parent / "t.db-wal").exists() else db.read_bytes()
    assert b"secret" not in raw and b"hidden" not in raw
    store = SqliteStore(db)
    (t,) = list(store.query())
    store.close()
    assert t.messages is None and t.response is None and t.prompt_hash


def test_get_by_id(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    store.write_sync(Trace(id="abc", time=1.0, model="m", route={"x": 1}))
    got = store.get("abc")
    assert got is not None and got.route == {"x": 1} and store.get("nope") is None
    store.close()


def test_migrations_are_idempotent_and_versioned(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_traces_stored_before_tool_use_still_load(tmp_path: Path) -> None:
    """A store written at schema version 2 (no tools column) migrates in place: its
    traces read back without tool use and keep their exported shape."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for i, sql in enumerate(MIGRATIONS[:2], start=1):
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (i,))
    conn.execute("INSERT INTO traces (id, time, model, status, escalated, stream, input_tokens,"
                 " output_tokens, latency_ms, cost, prompt_hash, route) VALUES ('old', 1.0, "
                 "'rung', 'ok', 0, 0, 1, 2, 3.0, 0.0, 'h', '{}')")
    conn.close()
    store = SqliteStore(db)
    new = Trace(id="new", time=2.0, model="rung",
                tools={"offered": ["f"], "calls": [{"id": "c", "name": "f", "arguments": "{}"}]})
    store.write_sync(new)
    old, got = store.get("old"), store.get("new")
    store.close()
    assert old is not None and old.tools is None and "tools" not in old.as_dict()
    assert old.tool_use.offered == () and old.tool_use.calls == ()
    assert got == new and got.tool_use.called == ("f",)


def test_cli_export_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    store = SqliteStore(db)
    for i in range(6):
        store.write_sync(Trace(id=f"t{i}", time=1_700_000_000 + i, model="rung",
                               tier="small" if i % 2 else "big", escalated=i % 2 == 0,
                               status="ok" if i < 5 else "backend_timeout",
                               input_tokens=i, output_tokens=2 * i, latency_ms=1.5,
                               cost=0.001 * i))
    store.close()
    url = f"sqlite:///{db}"
    assert main(["traces", "export", "--store", url, "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(6)]
    for key in ("id", "time", "tier", "status", "input_tokens", "output_tokens",
                "latency_ms", "cost", "escalated"):
        assert key in rows[0]
    assert main(["traces", "export", "--store", url, "--format", "csv", "--tier", "small",
                 "--ok"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("id,time,tier,status") and len(lines) == 1 + 2  # t1, t3
    assert main(["traces", "list", "--store", url, "--errors"]) == 0
    out = capsys.readouterr().out
    assert "backend_timeout" in out and len(out.strip().splitlines()) == 2
    assert main(["traces", "list", "--store", url, "--escalated", "--since",
                 "1700000002"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 2  # t2, t4
    assert main(["traces", "list", "--store", f"sqlite:///{tmp_path}/none.db"]) == 1
    assert re.search(r"no trace store", capsys.readouterr().err)


def test_traces_export_as_outcome_table_that_router_train_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    store = SqliteStore(db)
    for i in range(80):
        hard = i % 3 == 0
        attempts = [{"tier": "small", "outcome": "rejected" if hard else "answered",
                     "verdicts": [{"name": "logprob", "score": 0.9 if hard else 0.1,
                                   "accept": not hard, "detail": ""}]}]
        if hard:
            attempts.append({"tier": "big", "outcome": "answered"})
        prompt = f"prove theorem {i} step by step" if hard else f"say hi to {i}"
        store.write_sync(Trace(id=f"t{i}", time=1_700_000_000 + i, model="rung",
                               tier="big" if hard else "small", escalated=hard,
                               messages=[{"role": "user", "content": prompt}],
                               route={"attempts": attempts}))
    store.write_sync(Trace(id="pinned", time=1_700_000_100, model="small", tier="small",
                           messages=[{"role": "user", "content": "x"}],
                           route={"attempts": [{"tier": "small", "outcome": "answered"}]}))
    store.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[tiers]]\nname = "small"\n[[tiers]]\nname = "big"\n'
                   'backend = { type = "openai", base_url = "http://x/v1", model = "m" }\n')
    out = tmp_path / "outcomes"
    assert main(["traces", "export", "--config", str(cfg), "--store", f"sqlite:///{db}",
                 "--format", "outcomes", "--output", str(out)]) == 0
    assert "80 labelled requests" in capsys.readouterr().err  # the pinned one has no label
    model = tmp_path / "r.npz"
    assert main(["router", "train", "--data", str(out), "--benchmark", "traffic", "--out",
                 str(model)]) == 0
    from rung.routing.learned import RouterModel

    router = RouterModel.load(model)
    assert router.score("prove theorem 500 step by step") > router.score("say hi to 500")


def test_unusable_store_is_a_clear_error() -> None:
    from rung.errors import ConfigError
    from rung.store.base import open_store

    with pytest.raises(ConfigError, match="cannot open the trace store"):
        open_store("sqlite:////proc/no-such-dir/traces.db")
    with pytest.raises(ConfigError, match="unknown store URL"):
        open_store("mysql://x")
