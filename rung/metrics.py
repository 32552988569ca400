"""Prometheus metrics, one registry per app (so tests and several apps never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                    30, 60, 120)


class _StateCollector(Collector):
    """Gauges read at scrape time: queue depth, in-flight and model load state per tier."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, int, int, bool]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("rung_queue_depth", "Requests waiting for a local model.",
                                  labels=["tier"])
        inflight = GaugeMetricFamily("rung_in_flight", "Requests admitted to a tier.",
                                     labels=["tier"])
        loaded = GaugeMetricFamily("rung_model_loaded", "1 when the tier can answer.",
                                   labels=["tier"])
        for tier, q, f, ready in self._read():
            depth.add_metric([tier], q)
            inflight.add_metric([tier], f)
            loaded.add_metric([tier], 1 if ready else 0)
        return [depth, inflight, loaded]


class Metrics:
    def __init__(self, state: Callable[[], Iterable[tuple[str, int, int, bool]]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rung_requests", "Requests by answering tier and outcome.",
                                ["tier", "status"], registry=r)
        self.latency = Histogram("rung_request_latency_seconds", "Total request latency.",
                                 ["tier"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("rung_time_to_first_token_seconds", "Time to first token.",
                              ["tier"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("rung_tokens", "Tokens by tier and kind (prompt/completion).",
                              ["tier", "kind"], registry=r)
        self.escalations = Counter(
            "rung_escalations", "Requests moved past a tier, by tier and reason "
            "(rejected by its verifiers, or the error it raised).", ["tier", "reason"],
            registry=r)
        self.cost = Counter("rung_cost", "Cost of answered requests, by answering tier.",
                            ["tier"], registry=r)
        self.cost_top = Counter(
            "rung_cost_if_top_tier", "What the same answered requests would have cost on the "
            "top tier (cost saved = this minus rung_cost_total).", registry=r)
        self.router_score = Histogram("rung_router_score", "Router scores.",
                                      buckets=[i / 10 for i in range(1, 11)], registry=r)
        self.verifier_score = Histogram("rung_verifier_score", "Verifier scores by verifier.",
                                        ["verifier"], buckets=[i / 10 for i in range(1, 11)],
                                        registry=r)
        self.drift_detected = Gauge("rung_drift_detected", "1 when the last drift check "
                                    "flagged drift (Bonferroni over its tests).", registry=r)
        self.drift_p = Gauge("rung_drift_p_value", "p-value of each drift test in the last "
                             "check.", ["test"], registry=r)
        r.register(_StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)
