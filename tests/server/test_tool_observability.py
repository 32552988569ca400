"""Tool calls are observable: a real rung on loopback over two upstream tiers that answer
with tool calls. Traces keep the tools offered, the tool_choice and the calls (arguments
only when traces are not redacted), /metrics counts each call returned by answering tier
and tool, the dashboard's summary gives exact tool numbers, and `rung traces export`
carries them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rung.cli.main import main
from rung.devtools.upstream import UpstreamBehaviour
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace
from rung.types import ToolCall
from tests.conftest import LiveServer, config_of, http, rung_server, upstream_server, upstream_tier
from tests.store.test_traces import _metric

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}
SMALL_CALL = ToolCall("call_s1", "get_weather", '{"city": "Paris"}')
BIG_CALLS = [ToolCall("call_b1", "get_weather", '{"city": "Oslo"}'),
             ToolCall("call_b2", "get_time", '{"tz": "CET"}')]
USER = {"role": "user", "content": "Weather in Paris?"}
ASKED = {"role": "assistant", "content": None, "tool_calls": [SMALL_CALL.as_dict()]}
ANSWERED = {"role": "tool", "tool_call_id": "call_s1", "content": "sunny"}


@contextmanager
def gateway(db: Path, *, redact: bool = False) -> Iterator[LiveServer]:
    """``small`` (JSON-checked: a call is no JSON text, so JSON requests escalate) calls
    get_weather; ``big`` calls get_weather and get_time."""
    small = UpstreamBehaviour(reply="It is sunny.", tool_calls=[SMALL_CALL])
    big = UpstreamBehaviour(reply="{}", tool_calls=BIG_CALLS)
    with upstream_server(small) as a, upstream_server(big) as b:
        cfg = config_of(tiers=[upstream_tier("small", a.url) | {"verifiers": [{"type": "json"}]},
                               upstream_tier("big", b.url)],
                        store={"redact": redact})
        with rung_server(cfg, store=db) as server:
            yield server


def _ask(**extra: Any) -> dict[str, Any]:
    return {"model": "rung", "messages": [USER], **extra}


# (name, body, HTTP status). The handful the exact numbers below are worked out from.
REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("auto", _ask(tools=[WEATHER, CLOCK], tool_choice="auto"), 200),  # small: 1 call
    ("stream", _ask(tools=[WEATHER, CLOCK], stream=True), 200),  # small: 1 call, streamed
    ("json", _ask(tools=[WEATHER], response_format={"type": "json_object"}), 200),  # big: 2
    ("plain", _ask(), 200),  # no tools: not a tool-call step
    ("result", _ask(messages=[USER, ASKED, ANSWERED], tools=[WEATHER]), 200),  # text answer
    ("unknown model", _ask(model="gpt-nope", tools=[WEATHER, CLOCK]), 404),  # offered, no call
]


async def _send(url: str) -> dict[str, int]:
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession() as s:
        for name, body, _ in REQUESTS:  # in order: trace times follow the table
            async with s.post(f"{url}/v1/chat/completions", json=body) as r:
                await r.read()
                statuses[name] = r.status
    return statuses


def _traces(db: Path) -> dict[str, Trace]:
    store = SqliteStore(db)
    try:
        ordered = sorted(store.query(), key=lambda t: t.time)
    finally:
        store.close()
    assert len(ordered) == len(REQUESTS)
    return {name: t for (name, _, _), t in zip(REQUESTS, ordered, strict=True)}


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Trace], str, Any, Path]:
    """The requests through an unredacted rung: its traces, /metrics and summary."""
    db = tmp_path_factory.mktemp("tools") / "traces.db"
    with gateway(db) as server:
        statuses = asyncio.run(_send(server.url))
        assert statuses == {name: status for name, _, status in REQUESTS}
        metrics = http("GET", f"{server.url}/metrics").body.decode()
        summary = http("GET", f"{server.url}/admin/api/summary?since=600").json()
    return _traces(db), metrics, summary, db


def test_traces_hold_the_tools_offered_the_choice_and_the_calls(
        plain_run: tuple[dict[str, Trace], str, Any, Path]) -> None:
    traces = plain_run[0]
    assert traces["auto"].tier == "small" and traces["json"].tier == "big"
    assert traces["auto"].tools == {
        "offered": ["get_weather", "get_time"], "choice": "auto",
        "calls": [{"id": "call_s1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]}
    # streamed calls are assembled from their pieces before they are stored
    assert traces["stream"].tools == {k: v for k, v in traces["auto"].tools.items()
                                      if k != "choice"}
    assert traces["json"].tools == {"offered": ["get_weather"],
                                    "calls": [c.as_dict()["function"] | {"id": c.id}
                                              for c in BIG_CALLS]}
    assert traces["json"].escalated
    assert traces["result"].tools == {"offered": ["get_weather"]}
    assert traces["unknown model"].status == "model_not_found"
    assert traces["unknown model"].tools == {"offered": ["get_weather", "get_time"]}
    plain = traces["plain"]
    assert plain.tools is None and "tools" not in plain.as_dict()  # the shape traces had
    use = traces["json"].tool_use
    assert use.called == ("get_weather", "get_time") and not use.redacted
    assert use.calls == tuple(BIG_CALLS)


def test_metrics_count_each_call_by_answering_tier_and_tool(
        plain_run: tuple[dict[str, Trace], str, Any, Path]) -> None:
    metrics = plain_run[1]
    assert "# HELP rung_tool_calls_total" in metrics and "'other'" not in metrics
    counts = {(tier, tool): _metric(metrics, "rung_tool_calls_total", tier=tier, tool=tool)
              for tier in ("small", "big") for tool in ("get_weather", "get_time")}
    assert counts == {("small", "get_weather"): 2, ("small", "get_time"): 0,
                      ("big", "get_weather"): 1, ("big", "get_time"): 1}
    assert _metric(metrics, "rung_tool_calls_total") == 4


def test_summary_tool_numbers_are_exact(
        plain_run: tuple[dict[str, Trace], str, Any, Path]) -> None:
    tools = plain_run[2]["tools"]
    # 5 of 6 requests offered tools (the unknown model's too); 4 calls in answered ones.
    assert tools["steps"] == 5 and tools["share"] == 5 / 6
    assert tools["calls"] == 4 and tools["tools"] == 2
    assert tools["by_tool"] == [
        {"name": "get_weather", "offered": 5, "calls": 3, "steps": 3, "escalated": 1,
         "escalation_rate": 1 / 3},
        {"name": "get_time", "offered": 3, "calls": 1, "steps": 1, "escalated": 1,
         "escalation_rate": 1.0},
    ]


def test_trace_detail_and_cli_export_carry_the_tools(
        plain_run: tuple[dict[str, Trace], str, Any, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    traces, _, _, db = plain_run
    url = f"sqlite:///{db}"
    assert main(["traces", "export", "--store", url, "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r.get("tools") for r in rows] == [traces[name].tools for name, _, _ in REQUESTS]
    assert "tools" not in rows[3]  # the plain request
    assert main(["traces", "export", "--store", url, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert json.loads(table[0]["tools"]) == traces["auto"].tools and table[3]["tools"] == ""


def test_dashboard_search_finds_steps_by_tool_name(
        plain_run: tuple[dict[str, Trace], str, Any, Path]) -> None:
    traces, _, _, db = plain_run
    with rung_server(config_of(tiers=[upstream_tier("up", "http://127.0.0.1:9")]),
                     store=db) as server:
        found = http("GET", f"{server.url}/admin/api/traces?q=GET_TIME&limit=500").json()
    expected = {traces[n].id for n in ("auto", "stream", "json", "unknown model")}
    assert {r["id"] for r in found["data"]} == expected


def test_redacted_traces_keep_tool_names_but_no_arguments(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    with gateway(db, redact=True) as server:
        statuses = asyncio.run(_send(server.url))
        assert statuses == {name: status for name, _, status in REQUESTS}
        metrics = http("GET", f"{server.url}/metrics").body.decode()
        detail = http("GET", f"{server.url}/admin/api/traces/{_traces(db)['json'].id}").json()
    traces = _traces(db)
    assert traces["auto"].tools == {"offered": ["get_weather", "get_time"], "choice": "auto",
                                    "calls": [{"id": "call_s1", "name": "get_weather"}]}
    assert traces["json"].tools == {"offered": ["get_weather"], "calls": [
        {"id": "call_b1", "name": "get_weather"}, {"id": "call_b2", "name": "get_time"}]}
    assert detail["tools"] == traces["json"].tools and detail["messages"] is None
    for t in traces.values():
        assert t.messages is None and t.response is None
        assert "Paris" not in json.dumps(t.tools) and "Oslo" not in json.dumps(t.tools)
    assert traces["json"].tool_use.redacted
    assert traces["json"].tool_use.called == ("get_weather", "get_time")
    # redaction hides arguments, not the counts
    assert _metric(metrics, "rung_tool_calls_total", tier="small", tool="get_weather") == 2
    assert _metric(metrics, "rung_tool_calls_total") == 4
