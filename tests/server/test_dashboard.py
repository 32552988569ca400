"""The dashboard's admin API on real traces, its auth, and the page in headless Chromium.

Traffic goes through a real rung (two tiers on loopback upstreams): plain prompts answer
on ``small``, JSON requests are rejected by small's JSON check and escalate to ``big``, a
few meet a failing ``small`` and fall through to ``big``, some stream, and some fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest

from rung.auth.keys import KeyStore
from rung.config import Config
from rung.devtools.upstream import UpstreamBehaviour
from rung.server.app import create_app
from rung.server.dashboard import CSP, add_dashboard_routes
from rung.store.analytics import bucket_seconds, percentiles, summarize
from rung.store.feedback import Feedback
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace
from rung.types import ToolCall
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

SMALL = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
BIG = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
PROMPTS = (
    "Summarise the attached meeting notes in three bullet points",
    "Translate 'good morning, how are you' into French",
    "Write a SQL query that counts orders per customer in 2024",
    "What is the capital of Australia?",
    "Explain the difference between a process and a thread",
    "Draft a polite reply declining the invitation for Friday",
    "Give me a regex that matches ISO 8601 dates",
    "Rewrite this sentence in plain English: the aforementioned party shall",
    "List five healthy breakfast ideas with oats",
    "Why does my Python script raise KeyError on line 12?",
    "Convert 72 degrees Fahrenheit to Celsius",
    "Suggest a name for a bakery that also sells coffee",
)
JSON_PROMPTS = (
    "Extract name, email and phone from this signature as JSON",
    "Return the invoice total and currency as a JSON object",
    "Classify the sentiment of this review; answer in JSON",
)


@dataclass
class Traffic:
    """What one round of traffic sends, to check the summary against."""

    ok: int = 0
    escalated_json: int = 0
    escalated_down: int = 0
    streams: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)

    def __iadd__(self, other: Traffic) -> Self:
        self.ok += other.ok
        self.escalated_json += other.escalated_json
        self.escalated_down += other.escalated_down
        self.streams += other.streams
        self.errors.update(other.errors)
        return self


def _config(small_url: str, big_url: str, **extra: Any) -> Config:
    return config_of(
        tiers=[
            # a short breaker cooldown: each round's scripted failures open small's circuit
            # breaker, and the next round should find it closed again
            upstream_tier("small", small_url, breaker_cooldown_s=0.3)
            | {"cost": SMALL, "verifiers": [{"type": "json"}]},
            upstream_tier("big", big_url) | {"cost": BIG},
        ],
        **extra,
    )


async def _round(url: str, small: UpstreamBehaviour, rng: random.Random) -> Traffic:
    """~107 requests: 70 plain, 10 streamed, 15 JSON (escalate), 5 past a failing small
    tier (escalate), 7 errors (unknown model, bad JSON, a pinned tier that fails)."""
    done = Traffic()
    sem = asyncio.Semaphore(8)

    async def chat(s: aiohttp.ClientSession, body: dict[str, Any] | bytes) -> int:
        kw: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with sem, s.post(f"{url}/v1/chat/completions", **kw) as r:
            await r.read()
            return r.status

    def ask(text: str, **extra: Any) -> dict[str, Any]:
        return {"model": "rung", "messages": [{"role": "user", "content": text}], **extra}

    async with aiohttp.ClientSession() as s:
        plain = [ask(rng.choice(PROMPTS)) for _ in range(70)]
        streamed = [ask(rng.choice(PROMPTS), stream=True) for _ in range(10)]
        as_json = [
            ask(rng.choice(JSON_PROMPTS), response_format={"type": "json_object"})
            for _ in range(15)
        ]
        mixed = plain + streamed + as_json
        rng.shuffle(mixed)
        statuses = await asyncio.gather(*(chat(s, b) for b in mixed))
        assert statuses == [200] * 95
        done.ok, done.streams, done.escalated_json = 95, 10, 15
        small.fail_first = 5  # the next five meet a failing small tier and fall through
        for _ in range(5):
            assert await chat(s, ask(rng.choice(PROMPTS))) == 200
        done.ok += 5
        done.escalated_down = 5
        for _ in range(3):
            assert (
                await chat(
                    s, {"model": "gpt-nope", "messages": [{"role": "user", "content": "hello?"}]}
                )
                == 404
            )
        for _ in range(2):
            assert await chat(s, b"{not json") == 400
        small.fail_status = 500
        for _ in range(2):  # pinned to the small tier, which fails: an error trace
            assert (
                await chat(
                    s,
                    {
                        "model": "small",
                        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                    },
                )
                >= 500
            )
        small.fail_status = None
        done.errors.update({"model_not_found": 3, "invalid_json": 2})
    return done


WEATHER = {"type": "function", "function": {"name": "get_weather"}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}


async def _tool_steps(url: str) -> None:
    """Agent steps: 8 offer tools; small calls get_weather on 6, and the 2 that also ask
    for JSON escalate to big, which calls get_weather and get_time."""
    user = {"role": "user", "content": "What is the weather in Lyon?"}
    async with aiohttp.ClientSession() as s:
        for i in range(8):
            body: dict[str, Any] = {"model": "rung", "messages": [user],
                                    "tools": [WEATHER, CLOCK] if i % 2 else [WEATHER]}
            if i % 4 == 3:
                body["response_format"] = {"type": "json_object"}
            async with s.post(f"{url}/v1/chat/completions", json=body) as r:
                assert r.status == 200, await r.text()


def _generate(
    db: Path, rounds: int, *, delays: bool = False, tools: bool = False
) -> tuple[Traffic, Config]:
    """Real traffic through rung into ``db`` (``tools``: a few tool-call steps too);
    returns what was sent and the config."""
    rng = random.Random(11)
    total = Traffic()
    small_call = [ToolCall("call_s", "get_weather", '{"city": "Lyon"}')]
    big_calls = [ToolCall("call_b", "get_weather", '{"city": "Lyon"}'),
                 ToolCall("call_t", "get_time", "{}")]
    with (
        upstream_server(UpstreamBehaviour(reply="Sure: here is a short answer.",
                                          tool_calls=small_call)) as a,
        upstream_server(UpstreamBehaviour(reply='{"answer": "ok"}', tool_calls=big_calls)) as b,
    ):
        cfg = _config(a.url, b.url)
        app = create_app(cfg, store=SqliteStore(db))
        add_dashboard_routes(app)
        with live(app) as server:
            wait_ready(server.url)
            for k in range(rounds):
                if k:
                    time.sleep(0.4)  # past small's breaker cooldown
                if delays:  # a load that varies, so latency charts have a shape
                    behaviour(a).delay_s = rng.choice((0.01, 0.02, 0.03, 0.05))
                    behaviour(b).delay_s = rng.choice((0.08, 0.12, 0.2))
                total += asyncio.run(_round(server.url, behaviour(a), rng))
            if tools:
                time.sleep(0.4)  # past small's breaker cooldown
                asyncio.run(_tool_steps(server.url))
    return total, cfg


@dataclass
class Site:
    server: LiveServer
    traffic: Traffic
    traces: list[Trace]
    config: Config

    def get(self, path: str, **headers: str) -> Any:
        r = http("GET", self.server.url + path, headers=headers)
        assert r.status == 200, (path, r.status, r.body[:300])
        return r.json()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One round of real traffic, then a dashboard over its store."""
    db = tmp_path_factory.mktemp("dash") / "traces.db"
    traffic, cfg = _generate(db, 1)
    store = SqliteStore(db)
    traces = list(store.query())
    app = create_app(cfg, store=store)
    add_dashboard_routes(app)
    with live(app) as server:
        yield Site(server, traffic, traces, cfg)


# --- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "step"),
    [
        (60, 1),
        (300, 5),
        (900, 30),
        (3600, 60),
        (6 * 3600, 600),
        (86400, 1800),
        (7 * 86400, 3 * 3600),
        (90 * 86400, 86400),
    ],
)
def test_bucket_seconds(window: float, step: int) -> None:
    assert bucket_seconds(window) == step


@pytest.mark.parametrize(
    ("values", "p50", "p95", "p99"),
    [
        ([], None, None, None),
        ([5.0], 5.0, 5.0, 5.0),
        ([float(i) for i in range(1, 101)], 50.0, 95.0, 99.0),
        ([3.0, 1.0, 2.0], 2.0, 3.0, 3.0),
    ],
)
def test_percentiles(
    values: list[float], p50: float | None, p95: float | None, p99: float | None
) -> None:
    assert percentiles(values) == {"p50": p50, "p95": p95, "p99": p99}


def test_summarize_buckets_and_costs() -> None:
    cfg = _config("http://127.0.0.1:9", "http://127.0.0.1:9")
    t0 = 1_700_000_040.0  # a whole minute, so buckets start at t0
    route = {
        "attempts": [
            {
                "tier": "small",
                "outcome": "rejected",
                "verdicts": [{"name": "json", "score": 0.0, "accept": False}],
            },
            {"tier": "big", "outcome": "answered"},
        ]
    }
    traces = [
        Trace(
            id="a",
            time=t0 + 1,
            model="rung",
            tier="small",
            input_tokens=1000,
            output_tokens=1000,
            latency_ms=10,
            cost=0.00075,
        ),
        Trace(
            id="b",
            time=t0 + 61,
            model="rung",
            tier="big",
            escalated=True,
            route=route,
            input_tokens=1000,
            output_tokens=1000,
            latency_ms=30,
            ttft_ms=5,
            cost=0.01875,
        ),
        Trace(id="c", time=t0 + 62, model="x", status="model_not_found"),
    ]
    out = summarize(traces, config=cfg, since=t0, until=t0 + 3600)
    assert out["bucket_s"] == 60 and len(out["buckets"]) == 60
    assert [b["requests"] for b in out["buckets"][:3]] == [1, 2, 0]
    assert out["buckets"][1]["reasons"] == {"small: rejected by json": 1}
    assert out["totals"]["requests"] == 3 and out["totals"]["errors"] == 1
    assert out["totals"]["escalation_rate"] == 0.5
    assert out["share"] == {"small": 0.5, "big": 0.5}
    top = 2 * (1000 * 3.0 + 1000 * 15.0) / 1e6  # both answers priced on big
    assert out["totals"]["baseline_cost"] == pytest.approx(top)
    assert out["totals"]["cost_saved"] == pytest.approx(top - 0.00075 - 0.01875)
    assert out["errors"] == {"model_not_found": 1}
    assert out["latency_ms"]["p50"] == 10 and out["ttft_ms"]["p50"] == 5
    assert out["satisfaction"] == {"n": 0, "mean": None, "by_tier": {},
                                   "buckets": [{}] * 60}
    said = [Feedback("a", 1.0, t0 + 70), Feedback("a", 0.5, t0 + 80),
            Feedback("b", 0.0, t0 + 90), Feedback("gone", 1.0, t0 + 90)]
    sat = summarize(traces, config=cfg, since=t0, until=t0 + 3600, feedback=said)["satisfaction"]
    assert sat["n"] == 3 and sat["mean"] == pytest.approx(0.5)
    assert sat["by_tier"] == {"small": {"n": 2, "mean": 0.75}, "big": {"n": 1, "mean": 0.0}}
    assert sat["buckets"][0] == {"small": {"n": 2, "mean": 0.75}}  # by the answer's time
    assert sat["buckets"][1] == {"big": {"n": 1, "mean": 0.0}}


# --- the API on real traces ----------------------------------------------------------------


def test_summary_matches_the_traffic(site: Site) -> None:
    sent = site.traffic
    out = site.get("/admin/api/summary?since=3600")
    totals = out["totals"]
    n_errors = sum(1 for t in site.traces if t.status != "ok")
    assert totals["requests"] == len(site.traces) == sent.ok + n_errors
    assert n_errors == 7 and totals["errors"] == 7
    for code, n in sent.errors.items():
        assert out["errors"][code] == n
    escalated = sent.escalated_json + sent.escalated_down
    assert totals["escalated"] == escalated == 20
    assert totals["escalation_rate"] == pytest.approx(escalated / sent.ok)
    assert out["answered"] == {"small": sent.ok - escalated, "big": escalated}
    assert out["share"]["small"] == pytest.approx((sent.ok - escalated) / sent.ok)
    assert out["reasons"]["small: rejected by json"] == sent.escalated_json
    assert sum(out["reasons"].values()) == escalated
    assert any(r.startswith(("small: Upstream", "small: Backend")) for r in out["reasons"])
    ok = [t for t in site.traces if t.status == "ok"]
    assert totals["cost"] == pytest.approx(sum(t.cost for t in site.traces))
    baseline = sum(
        (t.input_tokens * BIG["input_per_mtok"] + t.output_tokens * BIG["output_per_mtok"]) / 1e6
        for t in ok
    )
    assert totals["baseline_cost"] == pytest.approx(baseline)
    assert totals["cost_saved"] == pytest.approx(baseline - sum(t.cost for t in ok))
    assert totals["cost_saved"] > 0
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= max(t.latency_ms for t in ok)
    assert out["ttft_ms"]["p50"] is not None  # ten streams
    buckets = out["buckets"]
    assert out["bucket_s"] == 60 and 60 <= len(buckets) <= 61
    assert sum(b["requests"] for b in buckets) == totals["requests"]
    assert sum(b["escalated"] for b in buckets) == escalated
    assert sum(b["cost"] for b in buckets) == pytest.approx(totals["cost"])
    assert "drift" not in out


def test_summary_rejects_bad_windows(site: Site) -> None:
    for bad in ("abc", "0", "-5", "nan", str(10**9)):
        r = http("GET", f"{site.server.url}/admin/api/summary?since={bad}")
        assert r.status == 400, bad
        assert r.json()["error"]["param"] == "since"


def test_trace_search(site: Site) -> None:
    def ids(query: str) -> list[str]:
        return [r["id"] for r in site.get(f"/admin/api/traces?limit=500&{query}")["data"]]

    everything = ids("")
    assert len(everything) == len(site.traces)
    by_id = {t.id: t for t in site.traces}
    times = [by_id[i].time for i in everything]
    assert times == sorted(times, reverse=True)  # newest first
    french = ids("q=FRENCH")
    assert french and set(french) == {
        t.id
        for t in site.traces
        if t.messages and any("french" in m["content"].lower() for m in t.messages)
    }
    some = site.traces[3]
    assert ids(f"q={some.id}") == [some.id]
    assert some.id in ids(f"q={some.prompt_hash}")
    assert set(ids("q=gpt-nope")) == {t.id for t in site.traces if t.model == "gpt-nope"}
    assert {by_id[i].tier for i in ids("tier=big")} == {"big"}
    assert len(ids("status=error")) == 7
    assert len(ids("status=model_not_found")) == 3
    assert all(by_id[i].status == "ok" for i in ids("status=ok"))
    assert len(ids("escalated=true&status=ok")) == 20
    assert len(ids("escalated=true&status=ok&q=json")) == 15
    # the pinned tier's failures count as escalated in the store, as errors here
    assert len(ids("escalated=true")) == 22
    # paging: limit + before walk the whole list once, in order
    seen: list[str] = []
    before = ""
    while True:
        page = site.get(f"/admin/api/traces?limit=30{before}")
        seen += [r["id"] for r in page["data"]]
        if page["next_before"] is None:
            break
        before = f"&before={page['next_before']}"
    assert seen == everything
    row = site.get("/admin/api/traces?limit=1")["data"][0]
    assert "messages" not in row and "route" not in row and "prompt" in row
    for bad in ("escalated=maybe", "limit=0", "limit=501", "before=x"):
        assert http("GET", f"{site.server.url}/admin/api/traces?{bad}").status == 400, bad


def test_trace_detail(site: Site) -> None:
    t = next(t for t in site.traces if t.escalated and t.route["attempts"][0].get("verdicts"))
    d = site.get(f"/admin/api/traces/{t.id}")
    assert d["id"] == t.id and d["tier"] == "big" and d["messages"] == t.messages
    assert d["response"] == '{"answer": "ok"}'
    attempts = d["route"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["rejected", "answered"]
    assert attempts[0]["verdicts"][0]["name"] == "json"
    assert d["escalation_reasons"] == ["small: rejected by json"]
    assert d["top_tier_cost"] == pytest.approx(
        (t.input_tokens * 3.0 + t.output_tokens * 15.0) / 1e6
    )
    r = http("GET", f"{site.server.url}/admin/api/traces/nope")
    assert r.status == 404 and r.json()["error"]["code"] == "trace_not_found"


def test_page_and_static_files(site: Site) -> None:
    url = site.server.url
    page = http("GET", f"{url}/dashboard")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    html = page.body.decode()
    assert '<script src="/dashboard/static/app.js"' in html
    assert "<script>" not in html and " style=" not in html  # nothing inline for CSP
    js = http("GET", f"{url}/dashboard/static/app.js")
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript")
    css = http("GET", f"{url}/dashboard/static/app.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    assert js.headers["x-content-type-options"] == "nosniff"
    for missing in ("../app.py", "index.html", "nope.js"):
        assert http("GET", f"{url}/dashboard/static/{missing}").status == 404


def test_drift_status_appears_when_set(tmp_path: Path) -> None:
    from rung.server.state import DRIFT

    app = create_app(
        _config("http://127.0.0.1:9", "http://127.0.0.1:9"), store=SqliteStore(tmp_path / "t.db")
    )
    add_dashboard_routes(app)
    app[DRIFT] = lambda: {"status": "ok", "psi": 0.02}
    with live(app) as server:
        r = http("GET", f"{server.url}/admin/api/summary?since=60")
    assert r.json()["drift"] == {"status": "ok", "psi": 0.02}


# --- auth ----------------------------------------------------------------------------------


def test_admin_api_needs_an_admin_key(tmp_path: Path) -> None:
    db = tmp_path / "rung.db"
    store = SqliteStore(db)
    store.write_sync(Trace(id="t1", time=time.time(), model="rung", tier="small"))
    keys = KeyStore(db)
    _, user = keys.create("app")
    _, admin = keys.create("ops", admin=True)
    keys.close()
    cfg = _config("http://127.0.0.1:9", "http://127.0.0.1:9", server={"auth": "required"})
    app = create_app(cfg, store=store)
    add_dashboard_routes(app)
    with live(app) as server:
        for path in ("/admin/api/summary", "/admin/api/traces", "/admin/api/traces/t1"):
            r = http("GET", server.url + path)
            assert r.status == 401 and r.json()["error"]["code"] == "invalid_api_key", path
            r = http("GET", server.url + path, headers={"Authorization": "Bearer rk-wrong"})
            assert r.status == 401
            r = http("GET", server.url + path, headers={"Authorization": f"Bearer {user}"})
            assert r.status == 403 and r.json()["error"]["type"], path
            r = http("GET", server.url + path, headers={"Authorization": f"Bearer {admin}"})
            assert r.status == 200, path
        # the page holds no data: it loads without a key and asks for one
        assert http("GET", f"{server.url}/dashboard").status == 200


# --- the page in a real browser ------------------------------------------------------------


def _chromium() -> str | None:
    for name in (
        os.environ.get("RUNG_CHROMIUM", ""),
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ):
        if name and (path := shutil.which(name)):
            return path
    return None


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _spread_over_last_hour(traces: list[Trace], db: Path) -> None:
    """Replay real traces into ``db``, order kept, stretched over the last hour with a
    load that rises and falls (the real run took seconds, which charts as one bar)."""
    rng = random.Random(5)
    now = time.time()
    weights = [
        1.0 + 0.55 * math.sin(m / 9.0) + 0.25 * math.sin(m / 2.3) + rng.random() * 0.3
        for m in range(60)
    ]
    cum = [sum(weights[: m + 1]) for m in range(60)]
    store = SqliteStore(db)
    ordered = sorted(traces, key=lambda t: t.time)
    for i, t in enumerate(ordered):
        target = (i + 0.5) / len(ordered) * cum[-1]
        m = next(k for k, c in enumerate(cum) if c >= target)
        at = now - 3500 + 58 * (m + rng.random())  # inside the page's 1-hour window
        store.write_sync(dataclasses.replace(t, time=min(at, now - 1)))
    store.close()


def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium binary found (apt-get install chromium, or set RUNG_CHROMIUM)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright Python package is not installed"
    )
    real = tmp_path / "real.db"
    _, cfg = _generate(real, 4, delays=True, tools=True)
    source = SqliteStore(real)
    traces = list(source.query())
    source.close()
    db = tmp_path / "dash.db"
    _spread_over_last_hour(traces, db)
    rated = SqliteStore(db)
    answered = [t for t in rated.query() if t.status == "ok"][:10]
    for i, t in enumerate(answered):  # half good, half bad
        rated.add_feedback(Feedback(trace_id=t.id, score=float(i % 2), time=time.time()))
    rated.close()
    app = create_app(cfg, store=SqliteStore(db))
    add_dashboard_routes(app)
    with (
        live(app) as server,
        tempfile.TemporaryDirectory() as profile,
        sync_api.sync_playwright() as pw,
    ):
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=exe,
            headless=True,
            args=FLAGS,
            timeout=60_000,
            viewport={"width": 1440, "height": 1180},
            device_scale_factor=1,
        )
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{server.url}/dashboard")
            page.wait_for_selector("body[data-loaded=summary]")
            page.wait_for_selector("#trace-rows tr")
            # charts drew real shapes
            assert page.locator("#chart-traffic svg rect.bar").count() > 50
            assert page.locator("#chart-share svg path.slice").count() == 2
            assert page.locator("#chart-latency svg path.line").count() >= 3
            assert page.locator("#chart-esc svg rect.bar").count() > 5
            assert page.locator("#chart-cost svg path.saved-area").count() == 1
            assert page.locator("#sat-s").inner_text() == "10 ratings, mean 0.50 (1 = good)"
            assert page.locator("#chart-sat svg path.line").count() >= 1
            assert page.locator("#t-requests").inner_text() == f"{len(traces):,}"
            assert page.locator("#t-drift").inner_text() == "not configured"
            # tool-call steps: 8 of the requests; get_weather called on all 8, escalated on 2
            steps = f"8 tool-call steps, {100 * 8 / len(traces):.1f}% of requests"
            assert page.locator("#tools-s").inner_text().startswith(steps)
            weather = page.locator('#tools tr[data-tool="get_weather"] td').all_inner_texts()
            assert weather == ["get_weather", "8", "8", "8", "2", "25%"]
            clock = page.locator('#tools tr[data-tool="get_time"] td').all_inner_texts()
            assert clock == ["get_time", "4", "2", "2", "2", "100%"]
            rows = page.locator("#trace-rows tr")
            assert rows.count() == 50
            # The README's screenshot: taken every run, written into docs/ only when asked
            # (RUNG_UPDATE_SCREENSHOT=1), so a test run leaves the checkout clean.
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
            if os.environ.get("RUNG_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, REPO / "docs" / "dashboard.png")
            # search narrows the list to matching traces
            page.fill("#q", "french")
            page.wait_for_function("() => document.querySelectorAll('#trace-rows tr').length < 50")
            texts = rows.all_inner_texts()
            assert texts and all("french" in x.lower() for x in texts)
            # clicking a row opens its full detail
            rows.filter(has=page.locator(".pill.ok")).first.click()
            page.wait_for_selector("#detail:not([hidden]) .attempt")
            detail = page.locator("#detail-body").inner_text()
            assert "small: answered" in detail or "big: answered" in detail
            assert "into French" in detail
            assert "Sure: here is a short answer." in detail or '{"answer": "ok"}' in detail
            page.keyboard.press("Escape")
            assert page.locator("#detail").is_hidden()
            # a tool-call step's detail shows the tools offered and the calls made
            page.fill("#q", "weather in lyon")
            page.wait_for_function("() => document.querySelectorAll('#trace-rows tr').length == 8")
            rows.filter(has=page.locator(".pill.esc")).first.click()
            page.wait_for_selector("#detail:not([hidden]) .call")
            detail = page.locator("#detail-body").inner_text()
            assert "get_weather, get_time" in detail  # offered
            assert 'get_weather({"city": "Lyon"})' in detail and "get_time({})" in detail
            assert "reject json score" in detail  # small's verdict, with its detail
            page.keyboard.press("Escape")
            assert not problems, problems
        finally:
            ctx.close()
