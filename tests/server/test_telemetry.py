"""OpenTelemetry spans with GenAI conventions, captured by the SDK's in-memory exporter."""

from __future__ import annotations

import tempfile
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rung.devtools.upstream import UpstreamBehaviour
from rung.server.app import TELEMETRY, create_app
from rung.store.sqlite import SqliteStore
from rung.telemetry import Telemetry
from tests.conftest import config_of, http, live, upstream_server, upstream_tier, wait_ready


def test_spans_for_request_and_each_tier_call() -> None:
    exporter = InMemorySpanExporter()
    with upstream_server(UpstreamBehaviour(reply="not json")) as a, \
            upstream_server(UpstreamBehaviour(reply='{"a": 1}')) as b, \
            tempfile.TemporaryDirectory() as tmp:
        cfg = config_of(tiers=[upstream_tier("small", a.url) | {"verifiers": [{"type": "json"}]},
                               upstream_tier("big", b.url)])
        tel = Telemetry(cfg, exporter)
        app = create_app(cfg, store=SqliteStore(Path(tmp) / "t.db"), telemetry=tel)
        with live(app) as server:
            wait_ready(server.url)
            r = http("POST", f"{server.url}/v1/chat/completions", {
                "model": "rung", "messages": [{"role": "user", "content": "hi"}],
                "response_format": {"type": "json_object"}})
            assert r.status == 200
    spans = {s.name: s for s in exporter.get_finished_spans()}  # flushed at shutdown
    root = spans["chat rung"]
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.request.model"] == "rung"
    assert root.attributes["gen_ai.response.model"] == "big"
    assert root.attributes["gen_ai.usage.output_tokens"] == 2  # the upstream counts words
    small, big = spans["chat small"], spans["chat big"]
    for child in (small, big):
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.attributes["gen_ai.provider.name"] == "openai"
        assert child.attributes["gen_ai.request.model"] == "up"
    assert small.attributes["rung.outcome"] == "rejected"
    assert small.attributes["rung.verdicts"].startswith("json=1.000")
    assert big.attributes["rung.outcome"] == "answered"
    assert small.start_time <= big.start_time <= root.end_time


def test_off_by_default() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config_of(tiers=[upstream_tier("x", "http://127.0.0.1:9")]),
                         store=SqliteStore(Path(tmp) / "t.db"))
        assert app[TELEMETRY] is None
