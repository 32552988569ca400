"""Per-key tool lists: stored with the key, set and shown by ``rung keys``, enforced by a
real server on top of the config's ``[tools]`` lists (a tool must pass both)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rung.auth.keys import ApiKey, KeyStore, key_hash
from rung.cli.main import main
from rung.config import ToolsConfig
from rung.errors import ConfigError, RequestError
from rung.server.tools_wire import check_allowed
from rung.store import sqlite
from rung.store.sqlite import SqliteStore
from rung.types import ToolSpec
from tests.conftest import behaviour, config_of, http, rung_server, upstream_server, upstream_tier


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def _body(*tools: str, stream: bool = False) -> dict[str, Any]:
    body = {"model": "up", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return body | {"tools": [_tool(t) for t in tools]} if tools else body


def _create(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
    key_id, secret = capsys.readouterr().out.strip().split("\t")
    return key_id, secret


def _key(allow: tuple[str, ...] | None, deny: tuple[str, ...] | None) -> ApiKey:
    return ApiKey(id="k", name="n", created=0, revoked=None, admin=False, rpm=None, tpm=None,
                  daily_budget=None, monthly_budget=None, tools_allow=allow, tools_deny=deny)


@pytest.mark.parametrize(("config", "key", "tool", "refused_by"), [
    ({}, None, "delete_file", None),
    ({}, _key(None, None), "delete_file", None),
    ({}, _key(("get_*",), None), "get_weather", None),
    ({}, _key(("get_*",), None), "delete_file", "API key"),
    ({}, _key(("get_*", "search"), None), "search", None),
    ({}, _key(None, ("delete_*",)), "delete_file", "API key"),
    ({}, _key(("get_*",), ("get_secret*",)), "get_secret_key", "API key"),  # deny wins
    ({}, _key(("get_*",), None), "GET_WEATHER", "API key"),  # case-sensitive, as names are
    ({"deny": ("get_*",)}, _key(("*",), None), "get_weather", "gateway"),
    ({"allow": ("search",)}, _key(("get_*",), None), "get_weather", "gateway"),
    ({"allow": ("get_*", "search")}, _key(("get_*",), None), "search", "API key"),
])
def test_a_tool_must_pass_the_config_and_the_key(config: dict[str, Any], key: ApiKey | None,
                                                 tool: str, refused_by: str | None) -> None:
    tools, policy = [ToolSpec(tool, None, None, None)], ToolsConfig(**config)
    if refused_by is None:
        check_allowed(policy, tools, key=key)
        return
    with pytest.raises(RequestError) as info:
        check_allowed(policy, tools, key=key)
    assert (info.value.param, info.value.code) == ("tools[0]", "tool_not_allowed")
    assert f"'{tool}'" in info.value.message and refused_by in info.value.message


def test_key_tool_lists_through_a_server(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "rung.db"
    with upstream_server() as up:
        cfg = config_of(server={"auth": "required"}, tiers=[upstream_tier("up", up.url)],
                        tools={"deny": ["rm_*"]})
        with rung_server(cfg, store=db) as server:
            url = f"{server.url}/v1/chat/completions"

            def call(secret: str, *tools: str, stream: bool = False) -> tuple[int, Any]:
                r = http("POST", url, _body(*tools, stream=stream),
                         headers={"Authorization": f"Bearer {secret}"})
                return r.status, r.json() if r.status != 200 or not stream else None

            a_id, a = _create(db, capsys, "--name", "a", "--tools-allow", "get_*")
            _, b = _create(db, capsys, "--name", "b")
            status, body = call(a, "get_weather", "delete_file")
            assert status == 400
            err = body["error"]
            assert (err["param"], err["code"]) == ("tools[1]", "tool_not_allowed")
            assert "'delete_file'" in err["message"]
            assert call(a, "delete_file", stream=True)[0] == 400  # streamed: refused alike
            assert behaviour(up).calls == 0  # the upstream never saw a refused request
            assert call(a, "get_weather")[0] == 200
            assert call(a)[0] == 200  # a request without tools is not a tool request
            assert call(b, "get_weather", "delete_file")[0] == 200
            status, body = call(b, "rm_rf")  # the config's deny applies to every key
            assert status == 400 and body["error"]["code"] == "tool_not_allowed"
            assert "gateway" in body["error"]["message"]
            status, body = call(a, "rm_rf")
            assert status == 400 and body["error"]["param"] == "tools[0]"
            assert behaviour(up).calls == 3
    store = SqliteStore(db)
    try:
        refused = [t for t in store.query() if t.status == "tool_not_allowed"]
    finally:
        store.close()
    assert len(refused) == 4  # every refused request left a trace, with its key
    assert sorted(t.key_id == a_id for t in refused) == [False, True, True, True]


def test_keys_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "rung.db"
    kid, _ = _create(db, capsys, "--name", "agent", "--tools-allow", "get_*, search",
                     "--tools-deny", "delete_*")
    plain, _ = _create(db, capsys, "--name", "plain")
    assert main(["keys", "list", "--store", f"sqlite:///{db}"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows[kid].endswith("allow=get_*,search deny=delete_*")
    assert rows[plain].endswith(" -")
    store = KeyStore(db)
    try:
        keys = {k.id: k for k in store.list()}
        assert (keys[kid].tools_allow, keys[kid].tools_deny) == (("get_*", "search"),
                                                                 ("delete_*",))
        assert (keys[plain].tools_allow, keys[plain].tools_deny) == (None, None)
        with pytest.raises(ConfigError, match="empty"):
            store.create("nothing", tools_allow=())
    finally:
        store.close()
    with pytest.raises(SystemExit) as info:  # a list of no globs is a typo, not "any"
        main(["keys", "create", "--store", f"sqlite:///{db}", "--name", "x",
              "--tools-allow", " , "])
    assert info.value.code == 2
    assert "expected at least one glob" in capsys.readouterr().err


def test_keys_update_changes_and_lifts_tool_lists(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "rung.db"
    store = f"sqlite:///{db}"
    kid, _ = _create(db, capsys, "--name", "agent")
    assert main(["keys", "update", kid, "--store", store, "--tools-allow", "get_*"]) == 0
    assert capsys.readouterr().out.strip() == f"{kid}\ttools allow=get_*"
    assert main(["keys", "update", kid, "--store", store, "--tools-deny", "get_secret"]) == 0
    assert capsys.readouterr().out.strip() == f"{kid}\ttools allow=get_* deny=get_secret"
    assert main(["keys", "update", kid, "--store", store, "--tools-allow", "none"]) == 0
    assert capsys.readouterr().out.strip() == f"{kid}\ttools deny=get_secret"
    keys = KeyStore(db)
    try:
        [key] = keys.list()
        assert (key.tools_allow, key.tools_deny) == (None, ("get_secret",))
        assert key.allows_tool("delete_file") and not key.allows_tool("get_secret")
        with pytest.raises(ConfigError, match="no active key"):
            keys.set_tools("key_nope", deny=("x",))
        keys.revoke(kid)
        with pytest.raises(ConfigError, match="no active key"):  # a revoked key stays as it was
            keys.set_tools(kid, allow=("x",))
    finally:
        keys.close()
    assert main(["keys", "update", kid, "--store", store]) == 1  # nothing to update
    assert "nothing to update" in capsys.readouterr().err


def test_a_store_from_before_the_migration_keeps_its_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "old.db"
    old = sqlite3.connect(db, isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, sql in enumerate(sqlite.MIGRATIONS[:3], start=1):
        old.executescript(sql)
        old.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    secret = "rk-from-before-the-tool-lists"
    old.execute("INSERT INTO api_keys (id, name, hash, created, revoked, admin, rpm, tpm, "
                "daily_budget, monthly_budget) VALUES (?, ?, ?, ?, NULL, 0, 5, NULL, NULL, "
                "NULL)", ("key_old", "old", key_hash(secret), time.time()))
    old.close()
    with upstream_server() as up:
        cfg = config_of(server={"auth": "required"}, tiers=[upstream_tier("up", up.url)])
        with rung_server(cfg, store=db) as server:
            r = http("POST", f"{server.url}/v1/chat/completions",
                     _body("get_weather", "delete_file"),
                     headers={"Authorization": f"Bearer {secret}"})
            assert r.status == 200  # the old key narrows no tool
    store = KeyStore(db)
    try:
        key = store.lookup(secret)
        assert key is not None and (key.name, key.rpm) == ("old", 5)
        assert (key.tools_allow, key.tools_deny) == (None, None)
        version = store._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        assert version == (len(sqlite.MIGRATIONS),)
    finally:
        store.close()
    assert main(["keys", "list", "--store", f"sqlite:///{db}"]) == 0
    assert "key_old" in capsys.readouterr().out
