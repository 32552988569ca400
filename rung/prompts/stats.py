"""Per prompt version, what its requests cost and which tier had to answer them: the
dashboard's ``prompts`` summary, computed from traces (their route's ``prompt``).

Beyond latency, tokens and cost, each version says how often the cheapest ladder tier
was enough (``small_share``: answered there, unescalated), the share answered on each
tier, its escalation rate, the mean verifier score of the answers it got (higher: more
likely wrong, as verdicts score), sampled judges' and users' scores where there are any.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rung.store.trace import Trace

MAX_VERSIONS = 50  # rows in a summary, busiest first


@dataclass
class _Version:
    requests: int = 0
    errors: int = 0
    escalated: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)
    by_tier: Counter[str] = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)
    verifier: list[float] = field(default_factory=list)
    judged: list[float] = field(default_factory=list)
    feedback: list[float] = field(default_factory=list)


@dataclass
class PromptStats:
    """Add traces one by one (``add``); ``as_list`` is the summary's ``prompts``."""

    cheapest: str  # the first ladder tier: "the small model was enough"
    scores: dict[str, list[float]]  # trace id -> its users' feedback scores
    versions: dict[tuple[str, int], _Version] = field(default_factory=dict)

    def add(self, t: Trace) -> None:
        p = t.prompt
        if p is None or not isinstance(p.get("version"), int):
            return
        v = self.versions.setdefault((str(p.get("name")), int(p["version"])), _Version())
        v.requests += 1
        v.cost += t.cost
        if p.get("label"):
            v.labels[str(p["label"])] += 1
        if t.status != "ok":
            v.errors += 1
            return
        v.input_tokens += t.input_tokens
        v.output_tokens += t.output_tokens
        v.latency.append(t.latency_ms)
        v.by_tier[t.tier or "none"] += 1
        v.escalated += t.escalated
        route = t.routing
        answered = [a for a in route.attempts if a.tier == t.tier and a.verdicts]
        if answered:
            v.verifier.append(max(x.score for x in answered[-1].verdicts))
        if route.judged is not None:
            v.judged.append(route.judged.verdict.score)
        v.feedback.extend(self.scores.get(t.id, ()))

    def as_list(self) -> list[dict[str, Any]]:
        from rung.store.analytics import percentiles

        rows = []
        for (name, version), v in sorted(self.versions.items(),
                                         key=lambda kv: (-kv[1].requests, kv[0])):
            ok = v.requests - v.errors
            small = v.by_tier[self.cheapest]  # answered on the cheapest tier
            rows.append({
                "name": name, "version": version, "labels": dict(v.labels),
                "requests": v.requests, "errors": v.errors,
                "latency_ms": percentiles(v.latency),
                "input_tokens": v.input_tokens, "output_tokens": v.output_tokens,
                "cost": v.cost, "cost_per_request": v.cost / v.requests if v.requests else None,
                "share": {tier: n / ok for tier, n in v.by_tier.items()} if ok else {},
                "small_share": small / ok if ok else None,
                "escalation_rate": v.escalated / ok if ok else None,
                "verifier_score": _mean(v.verifier), "judge_score": _mean(v.judged),
                "feedback": {"n": len(v.feedback), "mean": _mean(v.feedback)},
            })
        return rows[:MAX_VERSIONS]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
