"""The server's drift monitor: a real server over a store where GSM8K traffic arrived
after MMLU traffic flags drift in its gauge and in the dashboard summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rung.store.sqlite import SqliteStore
from tests.conftest import config_of, http, rung_server, upstream_tier
from tests.drift.test_drift_cli import N, _prompts, _trace


def test_monitor_flags_drift_in_metrics_and_dashboard(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    now = time.time()
    rng = np.random.default_rng(0)
    store = SqliteStore(db)
    for i, p in enumerate(_prompts("mmlu")[:N]):
        store.write_sync(_trace(i, now - 3000 + i, p, rng))  # the reference hour
    for i, p in enumerate(_prompts("gsm8k")[:N]):
        store.write_sync(_trace(10_000 + i, now - 500 + i, p, rng))  # the recent window
    store.close()
    cfg = config_of(drift={"enabled": True, "interval_s": 3600, "recent_s": 600,
                           "reference_s": 3000, "min_traces": 50},
                    tiers=[upstream_tier("up", "http://127.0.0.1:9")])
    with rung_server(cfg, store=db) as server:
        deadline = time.monotonic() + 60
        metrics = ""
        while time.monotonic() < deadline:
            metrics = http("GET", f"{server.url}/metrics").body.decode()
            if "rung_drift_detected 1.0" in metrics:
                break
            time.sleep(0.2)
        assert "rung_drift_detected 1.0" in metrics
        assert 'rung_drift_p_value{test="input.classifier_auc"}' in metrics
        summary = http("GET", f"{server.url}/admin/api/summary?since=3600").json()
        assert summary["drift"]["status"] == "drift"


def test_sampled_judge_adds_judged_quality_to_traces(tmp_path: Path) -> None:
    from rung.devtools.upstream import UpstreamBehaviour
    from rung.drift.features import verifier_scores
    from tests.conftest import upstream_server

    db = tmp_path / "t.db"
    judge = UpstreamBehaviour(reply_fn=lambda q: "yes" if "Proposed answer" in q else "?")
    with upstream_server(UpstreamBehaviour(reply="42")) as a, upstream_server(judge) as j:
        cfg = config_of(drift={"judge_tier": "judge", "judge_sample": 1.0},
                        tiers=[upstream_tier("small", a.url), upstream_tier("judge", j.url)])
        with rung_server(cfg, store=db) as server:
            for _ in range(5):
                assert http("POST", f"{server.url}/v1/chat/completions", {
                    "model": "small", "messages": [{"role": "user", "content": "6*7?"}]}
                    ).status == 200
        # the server drains its judgements on shutdown
    store = SqliteStore(db)
    traces = list(store.query())
    store.close()
    assert len(traces) == 5 and judge.calls == 5
    for t in traces:
        judged = t.route["judged"]
        assert judged["accept"] and judged["score"] == 0.0 and judged["tier"] == "judge"
        assert verifier_scores(t)["judged/judge"] == (0.0, True)
