"""What an answer cost, from a tier's cost model."""

from __future__ import annotations

from rung.backends.base import Usage
from rung.config import CostConfig
from rung.store.trace import Trace


def cost_of(cost: CostConfig, usage: Usage | None, seconds: float) -> float:
    """Token prices plus compute time; a backend that reports no usage costs its time."""
    total = cost.per_second * seconds
    if usage is not None:
        total += (usage.prompt_tokens * cost.input_per_mtok
                  + usage.completion_tokens * cost.output_per_mtok) / 1e6
    return total


def top_tier_cost(t: Trace, top: CostConfig) -> float:
    """What the trace's tokens (and time) would have cost on the top tier alone: the
    baseline of "cost saved", in the metrics and on the dashboard alike."""
    return cost_of(top, Usage(t.input_tokens, t.output_tokens), t.latency_ms / 1000)
