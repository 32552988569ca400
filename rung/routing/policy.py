"""The routing policy: pure functions from scores and verdicts to a decision.

No I/O, no clock, no globals: every decision comes back with its reason, so it can be
stored, shown in ``x-rung-route`` and tested table by table.

A threshold is a quantile of the scorer's output on calibration traffic (RouteLLM's
convention): with thresholds ``[t1, t2]`` a request scoring ``s`` starts at tier 0 when
``s < t1``, tier 1 when ``t1 <= s < t2``, tier 2 when ``s >= t2``. If ``t1`` is the 70th
percentile of calibration scores, about 30% of that traffic skips the cheapest tier.
When traffic changes, the share moves with it: the same threshold on harder traffic
sends more requests up, which is what drift monitoring watches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rung.types import Verdict

Rule = Literal["all", "any", "mean"]


@dataclass(frozen=True, slots=True)
class StartDecision:
    tier: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyDecision:
    accept: bool
    reason: str


def start_tier(score: float, thresholds: Sequence[float], *, n_tiers: int) -> StartDecision:
    """The first tier to try for a request with router score ``score``."""
    if not thresholds:
        return StartDecision(0, "no-thresholds")
    tier = sum(1 for t in thresholds if score >= t)
    tier = min(tier, n_tiers - 1)
    if tier == 0:
        return StartDecision(0, f"score {score:.3f} < {thresholds[0]:.3f}")
    return StartDecision(tier, f"score {score:.3f} >= {thresholds[tier - 1]:.3f}")


def sticky_start(scored: StartDecision, held: int | None,
                 names: Sequence[str]) -> StartDecision:
    """Start no lower than ``held``, the ladder position an earlier step of the same
    conversation escalated to (``rung.routing.sticky``); the reason says so when that,
    not the score, set the start."""
    if held is None or held <= scored.tier:
        return scored
    tier = min(held, len(names) - 1)
    return StartDecision(tier, f"sticky: an earlier step escalated to {names[tier]} "
                               f"({scored.reason})")


def combine(verdicts: Sequence[Verdict], rule: Rule) -> VerifyDecision:
    """Accept or escalate, from the verdicts of one tier's verifiers."""
    if not verdicts:
        return VerifyDecision(True, "no-verifiers")
    rejected = [v.name for v in verdicts if not v.accept]
    if rule == "all":
        if rejected:
            return VerifyDecision(False, "rejected by " + ",".join(rejected))
        return VerifyDecision(True, "all accept")
    if rule == "any":
        if len(rejected) < len(verdicts):
            return VerifyDecision(True, "accepted by " + ",".join(
                v.name for v in verdicts if v.accept))
        return VerifyDecision(False, "rejected by all")
    mean = sum(v.score for v in verdicts) / len(verdicts)
    if mean < 0.5:
        return VerifyDecision(True, f"mean score {mean:.3f} < 0.5")
    return VerifyDecision(False, f"mean score {mean:.3f} >= 0.5")
