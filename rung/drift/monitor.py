"""The server's drift monitor: every ``interval_s`` compare the recent window of traces
with the reference window (in a thread), export gauges, log a warning on drift, and keep
the last status for the dashboard."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rung.config import DriftConfig
from rung.metrics import Metrics
from rung.store.base import TraceStore

log = logging.getLogger("rung.drift")


class DriftMonitor:
    def __init__(self, store: TraceStore, cfg: DriftConfig, metrics: Metrics) -> None:
        self._store, self._cfg, self._metrics = store, cfg, metrics
        self._last: dict[str, Any] | None = None

    def status(self) -> dict[str, Any]:
        """For the dashboard: the last result, or that the first check has not run."""
        if self._last is None:
            return {"status": "waiting", "detail": "first check pending"}
        if not self._last.get("enough"):
            return {"status": "waiting", "n_reference": self._last.get("n_reference"),
                    "n_recent": self._last.get("n_recent"), "needed": self._last.get("needed")}
        drifted = [name for name, t in self._last["tests"].items() if t["drifted"]]
        return {"status": "drift" if self._last["drifted"] else "ok",
                "n_reference": self._last["n_reference"], "n_recent": self._last["n_recent"],
                "drifted_tests": ", ".join(drifted) or "none"}

    async def check(self) -> dict[str, Any]:
        from rung.drift.report import drift_status

        c = self._cfg
        result: dict[str, Any] = await asyncio.to_thread(
            drift_status, self._store, reference_s=c.reference_s, recent_s=c.recent_s,
            threshold_p=c.threshold_p, max_traces=c.max_traces, min_traces=c.min_traces,
            permutations=c.permutations)
        self._last = result
        if result.get("enough"):
            self._metrics.drift_detected.set(1 if result["drifted"] else 0)
            for name, t in result["tests"].items():
                self._metrics.drift_p.labels(name).set(t["p_value"])
            if result["drifted"]:
                log.warning("drift detected: %s", "; ".join(
                    t["explanation"] for t in result["tests"].values() if t["drifted"]))
        return result

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("drift check failed")
            await asyncio.sleep(self._cfg.interval_s)
