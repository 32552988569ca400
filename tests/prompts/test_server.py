"""Registered prompts end to end: the CLI pushes and moves labels, real servers on
loopback (two replicas on one store) serve them, on SQLite and on Postgres."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rung.auth.keys import open_keys
from rung.server.app import create_app
from rung.server.prompts import PROMPTS
from tests.conftest import (
    REPO,
    LiveServer,
    behaviour,
    config_of,
    http,
    live,
    upstream_server,
    upstream_tier,
    wait_ready,
)
from tests.store.conftest import pg_admin_url, pg_url  # noqa: F401

TTL = 0.5
PROMPT = """
message = "first"
[[messages]]
role = "system"
content = "You solve grade-school maths. {{style}}"
[[messages]]
role = "user"
content = "Question: {{question}}"
[variables]
style = "Show your steps."
[config]
temperature = 0.1
max_tokens = 77
"""


@dataclass
class World:
    url: str  # the store
    kind: str
    admin_url: str | None
    tmp: Path
    servers: list[LiveServer]
    locker: Any = None

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "rung.cli.main", "prompts", *args,
                            "--store", self.url], cwd=REPO, capture_output=True, text=True,
                           timeout=60, check=False)
        if ok:
            assert r.returncode == 0, r.stderr
        return r

    def push(self, text: str, *extra: str) -> dict[str, Any]:
        f = self.tmp / f"p{time.monotonic_ns()}.toml"
        f.write_text(text)
        out: dict[str, Any] = json.loads(self.cli("push", "gsm", "--file", str(f),
                                                  *extra).stdout)
        return out

    def outage(self, on: bool) -> None:
        """The registry stops answering (or answers again). On Postgres it hangs: another
        session holds its tables locked (a whole Postgres outage is a 503 anyway: no
        request is answered whose trace cannot be kept)."""
        if self.kind == "postgres":
            import psycopg

            if on:
                self.locker = psycopg.connect(self.url)
                self.locker.execute("LOCK TABLE prompt_labels, prompt_versions IN ACCESS "
                                    "EXCLUSIVE MODE")
            else:
                self.locker.rollback()
                self.locker.close()
        else:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            a, b = ("prompt_labels", "gone") if on else ("gone", "prompt_labels")
            conn.execute(f"ALTER TABLE {a} RENAME TO {b}")
            conn.commit()
            conn.close()


@contextmanager
def world(kind: str, tmp: Path, request: pytest.FixtureRequest, *,
          replicas: int = 2, **config: Any) -> Iterator[World]:
    if kind == "postgres":
        url = request.getfixturevalue("pg_url")
        admin = request.getfixturevalue("pg_admin_url")
    else:
        url, admin = f"sqlite:///{tmp / 'traces.db'}", None
    with upstream_server() as up, ExitStack() as stack:
        behaviour(up).reply = None  # echo the last user message
        behaviour(up).bodies = []
        cfg = config_of(store={"url": url}, prompts={"label_ttl_s": TTL, "timeout_s": 0.5},
                        tiers=[upstream_tier("up", up.url)], **config)
        servers = [stack.enter_context(live(create_app(cfg))) for _ in range(replicas)]
        for s in servers:
            wait_ready(s.url)
        w = World(url, kind, admin, tmp, servers)
        w.upstream = up  # type: ignore[attr-defined]
        yield w


def chat(server: LiveServer, prompt: str, variables: dict[str, Any] | None = None,
         **body: Any) -> tuple[int, dict[str, Any]]:
    rung: dict[str, Any] = {"prompt": prompt}
    if variables is not None:
        rung["variables"] = variables
    headers = body.pop("headers", None)
    r = http("POST", f"{server.url}/v1/chat/completions",
             {"model": "rung", "messages": body.pop("messages", []), "rung": rung, **body},
             headers=headers)
    return r.status, r.json()


KINDS = pytest.mark.parametrize("kind", ["sqlite", "postgres"])


@KINDS
def test_push_label_rollback_through_the_cli_and_two_replicas(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with world(kind, tmp_path, request) as w:
        assert w.push(PROMPT, "--label", "production", "-m", "v1") == {"name": "gsm",
                                                                      "version": 1}
        up = behaviour(w.upstream)  # type: ignore[attr-defined]
        status, body = chat(w.servers[0], "gsm", {"question": "What is 2+2?"})
        assert status == 200, body
        assert body["rung"]["prompt"] == {"name": "gsm", "version": 1, "label": "production"}
        assert body["choices"][0]["message"]["content"] == "Question: What is 2+2?"
        sent = up.bodies[-1]
        assert sent["messages"] == [
            {"role": "system", "content": "You solve grade-school maths. Show your steps."},
            {"role": "user", "content": "Question: What is 2+2?"}]
        assert (sent["temperature"], sent["max_tokens"]) == (0.1, 77)
        # The request's own fields win over the version's config; its turns come after.
        status, body = chat(w.servers[1], "gsm@1", {"question": "q", "style": "Be brief."},
                            temperature=0.9, messages=[{"role": "user", "content": "and?"}])
        assert status == 200 and body["rung"]["prompt"]["label"] is None
        sent = up.bodies[-1]
        assert sent["temperature"] == 0.9 and sent["messages"][0]["content"].endswith(
            "Be brief.") and sent["messages"][-1] == {"role": "user", "content": "and?"}

        # Both replicas have read the label; a move with the CLI reaches both within TTL.
        for s in w.servers:
            assert chat(s, "gsm", {"question": "q"})[1]["rung"]["prompt"]["version"] == 1
        assert w.push(PROMPT.replace("Show your steps.", "Answer with a number."))[
            "version"] == 2
        moved = time.monotonic()
        assert json.loads(w.cli("label", "gsm", "2", "production").stdout)["target"] == \
            {"2": 1.0}
        for s in w.servers:
            while chat(s, "gsm", {"question": "q"})[1]["rung"]["prompt"]["version"] != 2:
                assert time.monotonic() - moved < TTL + 2, "the move was not served in time"
                time.sleep(0.05)
        print(f"\n{kind}: a label moved with the CLI served by both replicas after "
              f"{time.monotonic() - moved:.2f} s (TTL {TTL} s, CLI start included)")
        assert up.bodies[-1]["messages"][0]["content"].endswith("Answer with a number.")
        assert chat(w.servers[0], "gsm@latest", {"question": "q"})[1]["rung"]["prompt"] \
            == {"name": "gsm", "version": 2, "label": "latest"}

        assert json.loads(w.cli("rollback", "gsm", "production").stdout)["target"] == \
            {"1": 1.0}
        time.sleep(TTL + 0.1)
        assert chat(w.servers[1], "gsm", {"question": "q"})[1]["rung"]["prompt"][
            "version"] == 1
        r = w.cli("rollback", "gsm", "production", ok=False)
        assert r.returncode == 1 and "no earlier version" in r.stderr

        listed = w.cli("list").stdout
        assert "gsm" in listed and "production=1" in listed
        shown = w.cli("show", "gsm@2").stdout
        assert "Answer with a number." in shown and 'role = "system"' in shown
        diff = w.cli("diff", "gsm", "production", "2").stdout
        assert '-style = "Show your steps."' in diff
        assert '+style = "Answer with a number."' in diff
        assert "-# gsm version 1: v1" in diff  # --message wins over the file's

        # Every request above left a trace carrying the version; the export has it.
        time.sleep(0.2)
        exported = subprocess.run(
            [sys.executable, "-m", "rung.cli.main", "traces", "export", "--store", w.url],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
        rows = [json.loads(line) for line in exported.splitlines()]
        assert len(rows) >= 7 and all(r["prompt"]["name"] == "gsm" for r in rows)
        assert rows[0]["route"]["prompt"] == rows[0]["prompt"]
        assert rows[0]["messages"][0]["role"] == "system"


@KINDS
def test_an_ab_split_is_sticky_per_user_and_per_key(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with world(kind, tmp_path, request, replicas=1) as w:
        w.push(PROMPT)
        w.push(PROMPT.replace("Show your steps.", "Answer with a number."))
        w.cli("label", "gsm", "1=0.5,2=0.5", "production")
        server = w.servers[0]
        seen: dict[str, int] = {}
        for i in range(40):
            _, body = chat(server, "gsm", {"question": "q"}, user=f"user-{i}")
            seen[f"user-{i}"] = body["rung"]["prompt"]["version"]
        counts = sorted(seen.values())
        assert 10 < counts.count(1) < 30, counts  # both sides, near half each
        for i in range(40):  # the same user lands on the same version every time
            _, body = chat(server, "gsm", {"question": "q"}, user=f"user-{i}")
            assert body["rung"]["prompt"]["version"] == seen[f"user-{i}"]
        # The Responses API takes the same options, and its user id sticks the same way.
        r = http("POST", f"{server.url}/v1/responses",
                 {"model": "rung", "user": "user-3",
                  "rung": {"prompt": "gsm", "variables": {"question": "q"}}})
        assert r.status == 200, r.body
        assert r.json()["rung"]["prompt"] == {"name": "gsm", "version": seen["user-3"],
                                              "label": "production"}
        assert r.json()["output"][0]["content"][0]["text"] == "Question: q"
        # The dashboard's summary: per version, its traffic and who answered it.
        time.sleep(0.2)
        rows = http("GET", f"{server.url}/admin/api/summary?since=600").json()["prompts"]
        by_version = {row["version"]: row for row in rows}
        assert sum(row["requests"] for row in rows) == 81
        assert by_version[1]["requests"] == 2 * counts.count(1) + (seen["user-3"] == 1)
        for row in rows:
            assert row["name"] == "gsm" and row["labels"] == {"production": row["requests"]}
            assert row["share"] == {"up": 1.0} and row["small_share"] == 1.0
            assert row["escalation_rate"] == 0.0 and row["latency_ms"]["p50"] > 0


def test_a_split_sticks_per_api_key(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with world("sqlite", tmp_path, request, replicas=1, server={"auth": "required"}) as w:
        keys = open_keys(w.url)
        secrets = [keys.create(f"k{i}")[1] for i in range(12)]
        _, admin = keys.create("admin", admin=True)
        keys.close()
        w.push(PROMPT)
        w.push(PROMPT)
        w.cli("label", "gsm", "1=0.5,2=0.5", "production")
        server = w.servers[0]
        got = []
        for s in secrets:
            hdr = {"Authorization": f"Bearer {s}"}
            versions = {chat(server, "gsm", {"question": "q"}, headers=hdr)[1]["rung"][
                "prompt"]["version"] for _ in range(3)}
            assert len(versions) == 1
            got.append(versions.pop())
        assert set(got) == {1, 2}
        # The admin API wants an admin key.
        assert http("GET", f"{server.url}/admin/api/prompts",
                    headers={"Authorization": f"Bearer {secrets[0]}"}).status == 403
        r = http("GET", f"{server.url}/admin/api/prompts",
                 headers={"Authorization": f"Bearer {admin}"})
        assert r.status == 200 and r.json()["data"][0]["labels"]["production"] == \
            {"1": 0.5, "2": 0.5}


@KINDS
def test_labels_expire_versions_stay_and_an_outage_serves_the_cache(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with world(kind, tmp_path, request, replicas=1) as w:
        w.push(PROMPT, "--label", "production")
        w.push(PROMPT, "--label", "staging")
        server = w.servers[0]
        cache = server.app[PROMPTS]
        assert chat(server, "gsm", {"question": "q"})[0] == 200
        reads = cache.reads
        assert reads == 2  # the label, then the version
        for _ in range(5):
            assert chat(server, "gsm", {"question": "q"})[0] == 200
        assert cache.reads == reads  # within the TTL: no read at all
        time.sleep(TTL + 0.05)
        assert chat(server, "gsm", {"question": "q"})[0] == 200
        assert cache.reads == reads + 1  # the label again; the version is kept for good

        w.outage(True)
        try:
            time.sleep(TTL + 0.05)
            t0 = time.monotonic()
            status, body = chat(server, "gsm", {"question": "q"})
            print(f"\n{kind}: store down, cached version served in "
                  f"{(time.monotonic() - t0) * 1000:.0f} ms")
            assert status == 200 and body["rung"]["prompt"]["version"] == 1
            assert cache.stale >= 1
            for _ in range(3):  # retried at most every second, meanwhile served at once
                assert chat(server, "gsm", {"question": "q"})[0] == 200
            status, body = chat(server, "gsm@staging", {"question": "q"})
            assert status == 503 and body["error"]["code"] == "store_unavailable"
        finally:
            w.outage(False)
        deadline = time.monotonic() + 10
        while chat(server, "gsm@staging", {"question": "q"})[0] != 200:
            assert time.monotonic() < deadline, "the registry did not come back"
            time.sleep(0.2)


@KINDS
def test_unknown_prompts_labels_and_variables_are_client_errors(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with world(kind, tmp_path, request, replicas=1) as w:
        w.push(PROMPT, "--label", "production")
        server = w.servers[0]
        for prompt, variables, status, code, param in (
                ("nope", {"question": "q"}, 404, "prompt_not_found", "rung.prompt"),
                ("gsm@canary", {"question": "q"}, 404, "prompt_label_not_found",
                 "rung.prompt"),
                ("gsm@9", {"question": "q"}, 404, "prompt_not_found", "rung.prompt"),
                ("gsm", {}, 400, "missing_variable", "rung.variables.question"),
                ("gsm", {"question": "q", "mood": "x"}, 400, "unknown_variable",
                 "rung.variables.mood"),
                ("gsm@", {}, 400, "invalid_value", "rung.prompt")):
            got, body = chat(server, prompt, variables)
            assert (got, body["error"]["code"], body["error"]["param"]) == \
                (status, code, param), body
        # Without a prompt, a request still needs its own messages.
        r = http("POST", f"{server.url}/v1/chat/completions", {"model": "rung",
                                                               "messages": []})
        assert r.status == 400 and r.json()["error"]["param"] == "messages"


def test_the_admin_api_pushes_labels_and_rolls_back(tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    with world("sqlite", tmp_path, request, replicas=1) as w:
        base = f"{w.servers[0].url}/admin/api/prompts"
        data = {"messages": [{"role": "user", "content": "{{q}}"}], "message": "m",
                "label": "production"}
        r = http("POST", f"{base}/echo", data)
        assert r.status == 200 and r.json() == {"name": "echo", "version": 1}
        assert http("POST", f"{base}/echo", {**data, "label": None}).json()["version"] == 2
        bad = http("POST", f"{base}/echo", {"messages": []})
        assert bad.status == 400 and "messages" in bad.json()["error"]["message"]
        r = http("PUT", f"{base}/echo/labels/production", {"version": 2})
        assert r.status == 200 and r.json()["target"] == {"2": 1.0}
        # this replica moved it: served at once, not after the TTL
        assert chat(w.servers[0], "echo", {"q": "hi"})[1]["rung"]["prompt"]["version"] == 2
        assert http("PUT", f"{base}/echo/labels/production", {"version": 7}).status == 404
        r = http("POST", f"{base}/echo/labels/production/rollback")
        assert r.status == 200 and r.json()["target"] == {"1": 1.0}
        assert http("GET", f"{base}/echo/production").json()["version"] == 1
        assert http("GET", f"{base}/echo/2").json()["author"] == "http"
        shown = http("GET", f"{base}/echo").json()
        assert [v["version"] for v in shown["versions"]] == [1, 2]
        assert http("GET", f"{base}/nope").status == 404


def test_streams_and_csv_exports_carry_the_version(tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    with world("sqlite", tmp_path, request, replicas=1) as w:
        w.push(PROMPT, "--label", "production")
        server = w.servers[0]
        r = http("POST", f"{server.url}/v1/chat/completions",
                 {"model": "rung", "messages": [], "stream": True,
                  "stream_options": {"include_usage": True},
                  "rung": {"prompt": "gsm", "variables": {"question": "q"}}})
        events = [json.loads(line[6:]) for line in r.body.decode().splitlines()
                  if line.startswith("data: {")]
        assert events[-1]["rung"]["prompt"] == {"name": "gsm", "version": 1,
                                                "label": "production"}
        r = http("POST", f"{server.url}/v1/responses",
                 {"model": "rung", "stream": True, "input": "and?",
                  "rung": {"prompt": "gsm@1", "variables": {"question": "q"}}})
        done = [json.loads(line[6:]) for line in r.body.decode().splitlines()
                if line.startswith("data: {") and "response.completed" in line]
        assert done[0]["response"]["rung"]["prompt"]["version"] == 1
        time.sleep(0.2)
        out = subprocess.run(
            [sys.executable, "-m", "rung.cli.main", "traces", "export", "--format", "csv",
             "--store", w.url], cwd=REPO, capture_output=True, text=True, timeout=60,
            check=True).stdout
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 2 and all(json.loads(r["prompt"])["name"] == "gsm" for r in rows)
