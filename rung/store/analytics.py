"""Trace analytics: what the dashboard charts and searches, computed from stored traces.

Pure functions and small records over :class:`~rung.store.trace.Trace` (read through its
typed route); no HTTP. The dashboard's handlers call these in a worker thread.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rung.config import Config, CostConfig
from rung.cost import cost_of
from rung.prompts.stats import PromptStats
from rung.store.base import TraceStore
from rung.store.feedback import SHADOWS, Feedback
from rung.store.trace import Trace
from rung.types import Outcome, Usage

MAX_WINDOW_S = 90 * 86400
_STEPS = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
TARGET_BUCKETS = 60
#: Tools listed in a summary, most called first: tool names come from clients, and a
#: window may hold thousands of them.
MAX_TOOLS = 50
_PERCENTILES = (50, 95, 99)


def top_tier_cost(t: Trace, top: CostConfig) -> float:
    """What the trace's tokens (and time) would have cost on the top tier alone: the
    baseline of "cost saved", in the metrics and on the dashboard alike."""
    return cost_of(top, Usage(t.input_tokens, t.output_tokens), t.latency_ms / 1000)


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
    for a in t.routing.attempts:
        if not a.outcome.moved_on:
            continue
        if a.outcome is Outcome.REJECTED:
            names = [v.name for v in a.verdicts if not v.accept]
            out.append(f"{a.tier}: rejected by {', '.join(names) or 'verifiers'}")
        else:
            out.append(f"{a.tier}: {a.outcome.value}")
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


@dataclass
class _Tools:
    """Tool-call steps (requests that offered tools) and, per tool, how often it was
    offered and called. A tool's *steps* are the answered requests whose answer called
    it, and its escalation rate is the share of those that went past their first tier:
    which tools the cheaper tiers do not get right."""

    steps: int = 0
    calls: int = 0
    offered: Counter[str] = field(default_factory=Counter)
    called: Counter[str] = field(default_factory=Counter)
    called_steps: Counter[str] = field(default_factory=Counter)
    escalated: Counter[str] = field(default_factory=Counter)

    def add(self, t: Trace) -> None:
        if t.tools is None:
            return
        use = t.tool_use
        if use.offered:
            self.steps += 1
            self.offered.update(use.offered)
        if t.status != "ok" or not use.calls:
            return
        self.calls += len(use.calls)
        self.called.update(use.called)
        names = set(use.called)
        self.called_steps.update(names)
        if t.escalated:
            self.escalated.update(names)

    def as_dict(self, requests: int) -> dict[str, Any]:
        names = sorted(self.offered.keys() | self.called.keys(),
                       key=lambda n: (-self.called[n], -self.offered[n], n))
        return {
            "steps": self.steps,
            "share": self.steps / requests if requests else None,
            "calls": self.calls,
            "tools": len(names),
            "by_tool": [
                {
                    "name": n,
                    "offered": self.offered[n],
                    "calls": self.called[n],
                    "steps": self.called_steps[n],
                    "escalated": self.escalated[n],
                    "escalation_rate": (self.escalated[n] / self.called_steps[n]
                                        if self.called_steps[n] else None),
                }
                for n in names[:MAX_TOOLS]
            ],
        }


@dataclass
class _Satisfaction:
    """Feedback scores on the window's answers (POST /v1/feedback), by the answering tier,
    over the whole window and per bucket of the answer's time."""

    by_id: dict[str, list[float]]
    n_buckets: int
    total: dict[str, list[float]] = field(default_factory=dict)  # tier -> [sum, n]
    buckets: list[dict[str, list[float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buckets = [{} for _ in range(self.n_buckets)]

    def add(self, t: Trace, bucket: int) -> None:
        scores = self.by_id.get(t.id)
        if not scores:
            return
        tier = t.tier or "-"
        for acc in (self.total, self.buckets[bucket]):
            s = acc.setdefault(tier, [0.0, 0])
            s[0] += sum(scores)
            s[1] += len(scores)

    @staticmethod
    def _means(acc: dict[str, list[float]]) -> dict[str, dict[str, float]]:
        return {tier: {"n": int(n), "mean": total / n} for tier, (total, n) in acc.items()}

    def as_dict(self) -> dict[str, Any]:
        n = sum(int(v[1]) for v in self.total.values())
        return {"n": n,
                "mean": sum(v[0] for v in self.total.values()) / n if n else None,
                "by_tier": self._means(self.total),
                "buckets": [self._means(b) for b in self.buckets]}


def summarize(
    traces: Iterable[Trace], *, config: Config, since: float, until: float,
    feedback: Iterable[Feedback] = (),
) -> dict[str, Any]:
    """Everything the dashboard charts, over ``[since, until)``.

    Escalation rate, tier shares, latency and cost saved count answered (``ok``) traces;
    errors are counted apart (their cost, if any, still counts in ``cost``). Cost saved is
    what the answered traces' tokens would have cost on the last tier, priced by its
    cost model (its ``per_second`` part on the trace's own latency), minus what they did.
    ``tools``: the share of requests that offered tools, and per tool (at most
    ``MAX_TOOLS``, most called first) its calls and escalation rate (see ``_Tools``).
    ``satisfaction``: the ``feedback`` on the window's answers, by answering tier, whole
    and per bucket (see ``_Satisfaction``). ``embeddings``: requests to ``/v1/embeddings``
    (count, errors, tokens, cost), which the rest leaves out. ``prompts``: per registered
    prompt version, its traffic and which tier answered it (``rung.prompts.stats``).
    """
    step = bucket_seconds(until - since)
    first = math.floor(since / step) * step
    n = max(1, math.ceil((until - first) / step))
    buckets = [_Bucket() for _ in range(n)]
    total = _Bucket()
    errors: Counter[str] = Counter()
    tools = _Tools()
    scores: dict[str, list[float]] = {}
    for fb in feedback:
        if fb.source not in SHADOWS:  # users' ratings, not the shadows' comparisons
            scores.setdefault(fb.trace_id, []).append(fb.score)
    satisfaction = _Satisfaction(scores, n)
    prompts = PromptStats(config.ladder_tiers[0].name, scores)
    top = config.ladder_tiers[-1].cost
    embeddings = {"requests": 0, "errors": 0, "input_tokens": 0, "cost": 0.0}
    for t in traces:
        if t.endpoint != "chat":  # /v1/embeddings: counted apart, out of the chat charts
            embeddings["requests"] += 1
            embeddings["errors"] += t.status != "ok"
            embeddings["input_tokens"] += t.input_tokens
            embeddings["cost"] += t.cost
            continue
        i = min(n - 1, max(0, int((t.time - first) // step)))
        buckets[i].add(t, top)
        total.add(t, top)
        tools.add(t)
        satisfaction.add(t, i)
        prompts.add(t)
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
        "tools": tools.as_dict(total.requests),
        "satisfaction": satisfaction.as_dict(),
        "embeddings": embeddings,
        "prompts": prompts.as_list(),
        "buckets": [{"t": first + i * step} | b.as_dict() for i, b in enumerate(buckets)],
    }


def _text(t: Trace) -> str:
    parts = [t.id, t.prompt_hash, t.model]
    parts += [m.get("content", "") for m in t.messages or ()]
    if t.tools is not None:  # a tool's name finds the steps that offered or called it
        use = t.tool_use
        parts += [*use.offered, *use.called]
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


