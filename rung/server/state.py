"""What an app built by ``create_app`` holds, by key, and the gate every handler asks.

Handlers (chat, models, metrics, the dashboard) read the app's parts through these keys;
keeping them here, not in ``app.py``, lets every handler module import them without an
import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from rung.auth.access import Access
from rung.config import Config
from rung.drift.judging import SampledJudge
from rung.errors import RungError
from rung.gateway import Gateway
from rung.metrics import Metrics
from rung.server.errors import error_response
from rung.server.sinks import Sink
from rung.store.base import TraceStore

GATEWAY = web.AppKey("gateway", Gateway)
METRICS = web.AppKey("metrics", Metrics)
CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", TraceStore)
ACCESS: web.AppKey[Access | None] = web.AppKey("access")
JUDGE: web.AppKey[SampledJudge | None] = web.AppKey("judge")
SINKS: web.AppKey[Sequence[Sink]] = web.AppKey("sinks")

DriftStatus = Callable[[], dict[str, Any] | None]
#: Set by the drift monitor, when there is one: its status appears in the dashboard's
#: summary as ``drift`` (the page shows "not configured" without it).
DRIFT: web.AppKey[DriftStatus] = web.AppKey("dashboard_drift")


def gate(request: web.Request, *, admin: bool = False) -> web.Response | None:
    """The error response for a caller without the right key; None when let in."""
    access = request.app[ACCESS]
    if access is None:
        return None
    try:
        access.authenticate(request.headers.get("Authorization"), admin=admin)
    except RungError as exc:
        return error_response(exc)
    return None
