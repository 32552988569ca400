"""What an answer cost, from a tier's cost model."""

from __future__ import annotations

from rung.config import CostConfig
from rung.types import Usage


def cost_of(cost: CostConfig, usage: Usage | None, seconds: float) -> float:
    """Token prices plus compute time; a backend that reports no usage costs its time."""
    total = cost.per_second * seconds
    if usage is not None:
        total += (usage.prompt_tokens * cost.input_per_mtok
                  + usage.completion_tokens * cost.output_per_mtok) / 1e6
    return total

