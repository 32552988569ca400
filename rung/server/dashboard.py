"""The operator's dashboard: ``/dashboard`` (static page) and its admin JSON API.

``add_dashboard_routes(app)`` registers everything on an app built by ``create_app``:

- ``GET /admin/api/summary?since=SECONDS_AGO``: traffic per time bucket, share answered
  per tier, escalation rate and reasons, latency and TTFT percentiles, cost and cost saved
  against always sending everything to the last (top) tier, error counts;
- ``GET /admin/api/traces?q=&tier=&status=&escalated=&limit=&before=``: the newest traces
  first, filtered; ``before`` pages on (``next_before`` of the previous page);
- ``GET /admin/api/traces/{id}``: one trace in full;
- ``GET /dashboard`` and ``/dashboard/static/{app.js,app.css}``: the page, no build step.

The API needs an admin key when the server has auth on; the page itself holds no data, so
it is open, and asks for a key when the API answers 401. Aggregation reads the window's
traces from the store in a worker thread and computes in Python: a few seconds of CPU
at most for 100k traces, and the event loop stays free meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from rung.config import Config, CostConfig
from rung.cost import top_tier_cost
from rung.server.errors import plain_error
from rung.store.base import TraceStore
from rung.store.trace import Trace

DriftStatus = Callable[[], dict[str, Any] | None]
#: Set by the drift monitor, when there is one: its status appears in the summary as
#: ``drift`` (the page shows "not configured" without it).
DRIFT: web.AppKey[DriftStatus] = web.AppKey("dashboard_drift")

STATIC = Path(__file__).parent / "static"
_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

#: Summaries are reused for a few seconds: several open tabs, or a refresh click on top
#: of the page's own auto-refresh, then cost one read of the window, not one each.
SUMMARY_TTL_S = 5.0
_CACHE: web.AppKey[dict[float, tuple[float, dict[str, Any]]]] = web.AppKey("dashboard_cache")

MAX_WINDOW_S = 90 * 86400
_STEPS = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
TARGET_BUCKETS = 60
MAX_LIMIT = 500
_PERCENTILES = (50, 95, 99)


# --- aggregation (pure: traces in, JSON-ready dict out) -----------------------------


def bucket_seconds(window_s: float) -> int:
    """The smallest round step that cuts the window into at most ~60 buckets."""
    for step in _STEPS:
        if window_s / step <= TARGET_BUCKETS:
            return step
    return _STEPS[-1]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99; None for an empty list."""
    if not values:
        return {f"p{p}": None for p in _PERCENTILES}
    s = sorted(values)
    return {f"p{p}": round(s[max(0, math.ceil(p / 100 * len(s)) - 1)], 3) for p in _PERCENTILES}


def escalation_reasons(t: Trace) -> list[str]:
    """Why each tier before the one that answered did not: "small: rejected by json",
    "small: BackendTimeout"."""
    out: list[str] = []
    for a in t.route.get("attempts", ()):
        outcome = a.get("outcome")
        if outcome in ("answered", "pending", None):
            continue
        if outcome == "rejected":
            names = [v.get("name", "?") for v in a.get("verdicts", ()) if not v.get("accept")]
            out.append(f"{a.get('tier')}: rejected by {', '.join(names) or 'verifiers'}")
        else:
            out.append(f"{a.get('tier')}: {outcome}")
    return out


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    escalated: int = 0
    cost: float = 0.0
    baseline: float = 0.0
    by_tier: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)

    def add(self, t: Trace, top: CostConfig | None) -> None:
        self.requests += 1
        self.cost += t.cost
        if t.status != "ok":
            self.errors += 1
            return
        self.by_tier[t.tier or "none"] += 1
        self.latency.append(t.latency_ms)
        if t.ttft_ms is not None:
            self.ttft.append(t.ttft_ms)
        if t.escalated:
            self.escalated += 1
            self.reasons.update(escalation_reasons(t))
        self.baseline += top_tier_cost(t, top) if top is not None else t.cost

    def as_dict(self) -> dict[str, Any]:
        ok = self.requests - self.errors
        return {
            "requests": self.requests,
            "errors": self.errors,
            "escalated": self.escalated,
            "escalation_rate": self.escalated / ok if ok else None,
            "by_tier": dict(self.by_tier),
            "reasons": dict(self.reasons),
            "latency_ms": percentiles(self.latency),
            "ttft_ms": percentiles(self.ttft),
            "cost": self.cost,
            "baseline_cost": self.baseline,
            "cost_saved": self.baseline - self.cost,
        }


def summarize(
    traces: Iterable[Trace], *, config: Config, since: float, until: float
) -> dict[str, Any]:
    """Everything the dashboard charts, over ``[since, until)``.

    Escalation rate, tier shares, latency and cost saved count answered (``ok``) traces;
    errors are counted apart (their cost, if any, still counts in ``cost``). Cost saved is
    what the answered traces' tokens would have cost on the last tier, priced by its
    cost model (its ``per_second`` part on the trace's own latency), minus what they did.
    """
    step = bucket_seconds(until - since)
    first = math.floor(since / step) * step
    n = max(1, math.ceil((until - first) / step))
    buckets = [_Bucket() for _ in range(n)]
    total = _Bucket()
    errors: Counter[str] = Counter()
    top = config.ladder_tiers[-1].cost
    for t in traces:
        i = min(n - 1, max(0, int((t.time - first) // step)))
        buckets[i].add(t, top)
        total.add(t, top)
        if t.status != "ok":
            errors[t.status] += 1
    totals = total.as_dict()
    ok = total.requests - total.errors
    tiers = [t.name for t in config.tiers]
    tiers += sorted(set(total.by_tier) - set(tiers))
    return {
        "since": since,
        "until": until,
        "bucket_s": step,
        "tiers": tiers,
        "totals": {
            k: totals[k]
            for k in (
                "requests",
                "errors",
                "escalated",
                "escalation_rate",
                "cost",
                "baseline_cost",
                "cost_saved",
            )
        },
        "share": {name: (total.by_tier[name] / ok if ok else 0.0) for name in tiers},
        "answered": {name: total.by_tier[name] for name in tiers},
        "reasons": dict(total.reasons.most_common()),
        "errors": dict(errors.most_common()),
        "latency_ms": totals["latency_ms"],
        "ttft_ms": totals["ttft_ms"],
        "top_tier": config.ladder_tiers[-1].name,
        "buckets": [{"t": first + i * step} | b.as_dict() for i, b in enumerate(buckets)],
    }


# --- trace search --------------------------------------------------------------------


def _text(t: Trace) -> str:
    parts = [t.id, t.prompt_hash, t.model]
    parts += [m.get("content", "") for m in t.messages or ()]
    return "\n".join(parts).lower()


def _preview(t: Trace) -> str:
    if t.messages is None:
        return ""
    last = next((m.get("content", "") for m in reversed(t.messages) if m.get("role") == "user"), "")
    return last if len(last) <= 160 else last[:157] + "..."


def row(t: Trace) -> dict[str, Any]:
    """A trace as one line of the list: no messages, no route."""
    return {
        "id": t.id,
        "time": t.time,
        "model": t.model,
        "status": t.status,
        "tier": t.tier,
        "escalated": t.escalated,
        "stream": t.stream,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "latency_ms": t.latency_ms,
        "ttft_ms": t.ttft_ms,
        "cost": t.cost,
        "prompt": _preview(t),
    }


@dataclass(frozen=True)
class Search:
    q: str = ""
    tier: str | None = None
    status: str | None = None  # "ok", "error" or one error code
    escalated: bool | None = None
    limit: int = 50
    before: float | None = None

    def matches(self, t: Trace) -> bool:
        if self.status not in (None, "ok", "error") and t.status != self.status:
            return False
        return not self.q or self.q.lower() in _text(t)

    def run(self, store: TraceStore) -> dict[str, Any]:
        errors = None if self.status is None else self.status != "ok"
        found: list[Trace] = []
        for t in store.query(
            until=self.before,
            tier=self.tier,
            escalated=self.escalated,
            errors=errors,
            newest_first=True,
        ):
            if self.matches(t):
                found.append(t)
                if len(found) > self.limit:
                    break
        more = len(found) > self.limit
        found = found[: self.limit]
        return {"data": [row(t) for t in found], "next_before": found[-1].time if more else None}


def find(store: TraceStore, trace_id: str) -> Trace | None:
    """One trace by id: the store's ``get`` when it has one, else a scan."""
    get = getattr(store, "get", None)
    if callable(get):
        found: Trace | None = get(trace_id)
        return found
    return next((t for t in store.query(newest_first=True) if t.id == trace_id), None)


# --- HTTP ------------------------------------------------------------------------------


class _BadParam(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param, self.message = param, message


def _number(
    request: web.Request, name: str, default: float | None, *, lo: float, hi: float
) -> float | None:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _BadParam(name, f"'{name}' must be a number") from None
    if not (lo <= value <= hi) or math.isnan(value):
        raise _BadParam(name, f"'{name}' must be between {lo:g} and {hi:g}")
    return value


def _flag(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name, "").lower()
    if raw in ("", "any"):
        return None
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise _BadParam(name, f"'{name}' must be true or false")


def _denied(request: web.Request) -> web.Response | None:
    from rung.server.app import gate

    return gate(request, admin=True)


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers=_API_HEADERS)


def _bad(exc: _BadParam) -> web.Response:
    return plain_error(400, exc.message, code="invalid_parameter", param=exc.param)


async def summary(request: web.Request) -> web.Response:
    from rung.server.app import CONFIG, STORE

    if (denied := _denied(request)) is not None:
        return denied
    try:
        window = _number(request, "since", 3600.0, lo=1, hi=MAX_WINDOW_S)
    except _BadParam as exc:
        return _bad(exc)
    assert window is not None
    until = time.time()
    since = until - window
    store, config = request.app[STORE], request.app[CONFIG]
    cache = request.app[_CACHE]
    hit = cache.get(window)
    if hit is not None and until - hit[0] < SUMMARY_TTL_S:
        out = dict(hit[1])
    else:

        def work() -> dict[str, Any]:
            return summarize(
                store.query(since=since, until=until), config=config, since=since, until=until
            )

        out = await asyncio.to_thread(work)
        if len(cache) >= 16:  # windows are the page's few presets; bound odd callers
            cache.clear()
        cache[window] = (until, out)
        out = dict(out)
    drift = request.app.get(DRIFT)
    if drift is not None and (status := drift()) is not None:
        out["drift"] = status
    return _json(out)


async def traces(request: web.Request) -> web.Response:
    from rung.server.app import STORE

    if (denied := _denied(request)) is not None:
        return denied
    try:
        limit = _number(request, "limit", 50, lo=1, hi=MAX_LIMIT)
        search = Search(
            q=request.query.get("q", "").strip(),
            tier=request.query.get("tier") or None,
            status=request.query.get("status") or None,
            escalated=_flag(request, "escalated"),
            limit=int(limit or 50),
            before=_number(request, "before", None, lo=0, hi=math.inf),
        )
    except _BadParam as exc:
        return _bad(exc)
    return _json(await asyncio.to_thread(search.run, request.app[STORE]))


async def trace_detail(request: web.Request) -> web.Response:
    from rung.server.app import CONFIG, STORE

    if (denied := _denied(request)) is not None:
        return denied
    trace_id = request.match_info["id"]
    t = await asyncio.to_thread(find, request.app[STORE], trace_id)
    if t is None:
        return plain_error(
            404, f"No trace with id '{trace_id}'.", code="trace_not_found", param="id"
        )
    config = request.app[CONFIG]
    out = t.as_dict() | {"escalation_reasons": escalation_reasons(t)}
    out["top_tier_cost"] = top_tier_cost(t, config.ladder_tiers[-1].cost)
    return _json(out)


async def page(request: web.Request) -> web.Response:
    body = await asyncio.to_thread((STATIC / "index.html").read_bytes)
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = _FILES.get(name)
    if kind is None:
        return plain_error(404, "Not Found", code="not_found")
    body = await asyncio.to_thread((STATIC / name).read_bytes)
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=_PAGE_HEADERS)


def add_dashboard_routes(app: web.Application) -> None:
    """Register the dashboard page and its admin API on an app from ``create_app``."""
    app[_CACHE] = {}
    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/static/{name}", static_file)
    app.router.add_get("/admin/api/summary", summary)
    app.router.add_get("/admin/api/traces", traces)
    app.router.add_get("/admin/api/traces/{id}", trace_detail)
