"""The operator's dashboard: ``/dashboard`` (static page) and its admin JSON API.

``add_dashboard_routes(app)`` registers everything on an app built by ``create_app``:

- ``GET /admin/api/summary?since=SECONDS_AGO``: traffic per time bucket, share answered
  per tier, escalation rate and reasons, latency and TTFT percentiles, cost and cost saved
  against always sending everything to the last (top) tier, error counts, and tool use
  (the share of requests that offered tools; per tool, its calls and escalation rate),
  and per registered prompt version its traffic and who answered it (``prompts``);
- ``GET /admin/api/traces?q=&tier=&status=&escalated=&limit=&before=``: the newest traces
  first, filtered; ``before`` pages on (``next_before`` of the previous page);
- ``GET /admin/api/traces/{id}``: one trace in full;
- ``GET /dashboard`` and ``/dashboard/static/{app.js,app.css}``: the page, no build step.

The API needs an admin key when the server has auth on; the page itself holds no data, so
it is open, and asks for a key when the API answers 401. Aggregation
(``rung.store.analytics``) reads the window's traces from the store in a worker thread
and computes in Python: a few seconds of CPU at most for 100k traces, and the event loop
stays free meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from rung.server.errors import plain_error
from rung.server.state import CONFIG, DRIFT, STORE, gate
from rung.store.analytics import (
    MAX_WINDOW_S,
    Search,
    escalation_reasons,
    find,
    summarize,
    top_tier_cost,
)

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

MAX_LIMIT = 500


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
    return gate(request, admin=True)


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers=_API_HEADERS)


def _bad(exc: _BadParam) -> web.Response:
    return plain_error(400, exc.message, code="invalid_parameter", param=exc.param)


async def summary(request: web.Request) -> web.Response:
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
                store.query(since=since, until=until), config=config, since=since, until=until,
                feedback=store.feedback(since=since),
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
