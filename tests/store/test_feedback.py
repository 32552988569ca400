"""POST /v1/feedback through a real server, on SQLite and on Postgres: stored with the
trace, exported with it, refused clearly when wrong, and owned by keys."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rung.cli.main import main
from rung.config import Config
from rung.store.base import TraceStore
from rung.store.postgres import PostgresStore
from rung.store.sqlite import SqliteStore
from tests.conftest import LiveServer, config_of, http, upstream_server, upstream_tier
from tests.store.conftest import rung_server_on

ASK = {"model": "up", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traces.db'}"
    return str(request.getfixturevalue("pg_url"))


def _open(url: str) -> TraceStore:
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    return PostgresStore(url)


def _server(cfg: Config, url: str) -> Iterator[LiveServer]:
    with rung_server_on(cfg, _open(url)) as server:
        yield server


def _completion(server: LiveServer, headers: dict[str, str] | None = None) -> str:
    r = http("POST", f"{server.url}/v1/chat/completions", ASK, headers=headers or {})
    assert r.status == 200, r.body
    return str(r.json()["id"])


def _feedback(server: LiveServer, body: object,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = http("POST", f"{server.url}/v1/feedback", raw,
             headers={"Content-Type": "application/json", **(headers or {})})
    return r.status, r.json()


def test_feedback_is_stored_with_its_trace_and_exported(store_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with upstream_server() as up:
        cfg = config_of(tiers=[upstream_tier("up", up.url)])
        for server in _server(cfg, store_url):
            rated, unrated = _completion(server), _completion(server)
            status, body = _feedback(server, {"id": rated, "score": 0.25, "comment": "meh"})
            assert status == 200, body
            assert body["id"] == rated and body["object"] == "feedback"
            assert body["score"] == 0.25 and body["comment"] == "meh"
            assert body["source"] == "user"
            assert _feedback(server, {"id": rated, "score": 1})[0] == 200  # an int is a number

            # what is wrong is refused, naming the param
            for bad, param, code in (
                    ({"id": "chatcmpl-nope", "score": 1.0}, "id", "not_found"),
                    ({"id": rated, "score": 1.5}, "score", "invalid_value"),
                    ({"id": rated, "score": True}, "score", "invalid_value"),
                    ({"score": 1.0}, "id", "invalid_value"),
                    ({"id": rated, "score": 1.0, "stars": 5}, "stars", "unknown_parameter")):
                status, body = _feedback(server, bad)
                err = body["error"]
                assert isinstance(err, dict)
                assert (status, err["param"], err["code"]) == \
                    (404 if code == "not_found" else 400, param, code), body
            status, body = _feedback(server, b"{not json")
            assert status == 400 and body["error"]["code"] == "invalid_json"  # type: ignore[index]

    store = _open(store_url)
    try:
        said = store.feedback(trace_id=rated)
        assert [(f.score, f.comment) for f in said] == [(0.25, "meh"), (1.0, None)]
        assert store.feedback(trace_id=unrated) == []
        assert len(store.feedback(since=said[0].time)) == 2
    finally:
        store.close()
    assert main(["traces", "export", "--store", store_url, "--format", "jsonl"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert [f["score"] for f in rows[rated]["feedback"]] == [0.25, 1.0]
    assert "feedback" not in rows[unrated]
    assert main(["traces", "export", "--store", store_url, "--format", "csv"]) == 0
    table = {r["id"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert json.loads(table[rated]["feedback"])[0]["comment"] == "meh"
    assert table[unrated]["feedback"] == ""


def test_a_key_rates_its_own_requests_and_an_admin_any(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "rung.db"

    def create(*args: str) -> dict[str, str]:
        assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
        secret = capsys.readouterr().out.strip().split("\t")[1]
        return {"Authorization": f"Bearer {secret}"}

    with upstream_server() as up:
        cfg = config_of(server={"auth": "required"}, tiers=[upstream_tier("up", up.url)])
        SqliteStore(db).close()  # the schema, so that keys can be created first
        alice, bob, ops = create("--name", "alice"), create("--name", "bob"), \
            create("--name", "ops", "--admin")
        for server in _server(cfg, f"sqlite:///{db}"):
            mine = _completion(server, alice)
            assert _feedback(server, {"id": mine, "score": 1.0})[0] == 401
            status, body = _feedback(server, {"id": mine, "score": 0.0}, bob)
            assert status == 403 and body["error"]["code"] == "forbidden"  # type: ignore[index]
            assert _feedback(server, {"id": mine, "score": 1.0}, alice)[0] == 200
            assert _feedback(server, {"id": mine, "score": 0.5}, ops)[0] == 200
    store = SqliteStore(db)
    try:
        assert [f.score for f in store.feedback(trace_id=mine)] == [1.0, 0.5]
        assert all(f.key_id for f in store.feedback(trace_id=mine))
    finally:
        store.close()
