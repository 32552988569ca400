"""Prometheus metrics, one registry per app (so tests and several apps never collide).

The per-request families are plain counters kept on the event loop and turned into
Prometheus samples when ``/metrics`` is scraped: a request adds to a few floats (a dict
lookup, an addition; a histogram bisects its bounds in C) instead of taking
prometheus_client's lock and walking its buckets for each of the ~15 updates a request
makes. They are updated from the event loop's thread only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: Distinct tool names ``rung_tool_calls_total`` labels; later names count as "other".
TOOL_LABELS = 256
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


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Counter(Collector):
    """A counter family (``NAME_total``), by label values."""

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = (), *,
                 registry: CollectorRegistry) -> None:
        self._name, self._doc, self._labelnames = name, doc, list(labelnames)
        self._children: dict[tuple[str, ...], _Count] = {}
        if not self._labelnames:
            self.labels()  # an unlabelled family is exported from the start, at 0
        registry.register(self)

    def labels(self, *values: str) -> _Count:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Count()
        return child

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        return [family]


class _Observed:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # bucket ``le`` counts v <= le
        self.sum += value


class Histogram(Collector):
    """A histogram family (``NAME_bucket``/``_count``/``_sum``), by label values."""

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = (), *,
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self._name, self._doc, self._labelnames = name, doc, list(labelnames)
        self._bounds = tuple(float(b) for b in buckets)
        self._children: dict[tuple[str, ...], _Observed] = {}
        if not self._labelnames:
            self.labels()  # an unlabelled family is exported from the start, empty
        registry.register(self)

    def labels(self, *values: str) -> _Observed:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Observed(self._bounds)
        return child

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*self._bounds, float("inf")), child.counts, strict=True):
                cumulative += n
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            family.add_metric(list(values), buckets, child.sum)
        return [family]


class LabelCap:
    """Bounds a label whose values clients choose (tool names): the first ``limit``
    distinct values pass as they are, every later one reads ``other``, so a client
    inventing names cannot grow the registry (and every scrape) without end."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


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
        self.tool_calls = Counter(
            "rung_tool_calls", "Tool calls returned to clients in answered requests, by "
            f"answering tier and tool name (the first {TOOL_LABELS} distinct tool names; "
            "calls of any later name count as tool=\"other\").", ["tier", "tool"], registry=r)
        self.tool_label = LabelCap(TOOL_LABELS)
        self.router_score = Histogram("rung_router_score", "Router scores.",
                                      buckets=[i / 10 for i in range(1, 11)], registry=r)
        self.verifier_score = Histogram("rung_verifier_score", "Verifier scores by verifier.",
                                        ["verifier"], buckets=[i / 10 for i in range(1, 11)],
                                        registry=r)
        self.shadows = Counter(
            "rung_shadows", "Shadow comparisons (routing.shadow) by outcome: agree, disagree, "
            "not_comparable, failed, skipped (too many at once).", ["outcome"], registry=r)
        self.shadow_cost = Counter("rung_shadow_cost", "Cost of the shadow tier's answers, "
                                   "counted apart from the requests'.", registry=r)
        self.drift_detected = Gauge("rung_drift_detected", "1 when the last drift check "
                                    "flagged drift (Bonferroni over its tests).", registry=r)
        self.drift_p = Gauge("rung_drift_p_value", "p-value of each drift test in the last "
                             "check.", ["test"], registry=r)
        r.register(_StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)
