"""Thresholds from targets, as quantiles of scores on a calibration set.

Two kinds of target:

- a traffic share: "at most 30% of requests start at the top tier" -> the threshold is
  the 70th percentile of the calibration scores (one share per tier boundary, for ladders
  of three or more tiers);
- a quality target: "recover at least 90% of the weak-to-strong gap" -> the smallest
  strong-call share whose PGR on outcome data reaches 0.9, turned into a quantile.

A threshold keeps its meaning only while traffic looks like the calibration set: if
requests get harder, more of them score above the same threshold and the top-tier
share grows (and the other way round). Re-calibrate on recent traffic when the share
drifts away from the target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rung.errors import ConfigError


def thresholds_for_shares(scores: Sequence[float], shares: Sequence[float]) -> list[float]:
    """``shares[i]`` = wanted fraction of requests starting at tier i+1 or above; must be
    non-increasing. Returns non-decreasing thresholds in [0, 1]."""
    if not scores:
        raise ConfigError("calibration needs at least one score")
    if any(not 0.0 <= s <= 1.0 for s in shares) or list(shares) != sorted(shares, reverse=True):
        raise ConfigError("shares must be non-increasing values in [0, 1]")
    arr = np.sort(np.asarray(scores, dtype=np.float64))
    out = []
    for share in shares:
        k = int(np.floor(share * len(arr)))  # how many scores may reach the threshold
        # The k-th highest score, or just above the highest when none may go up.
        t = float(arr[len(arr) - k]) if k > 0 else float(np.nextafter(arr[-1], np.inf))
        if np.count_nonzero(arr >= t) > k:  # ties at t would take too many up
            t = float(np.nextafter(t, np.inf))
        out.append(min(max(t, 0.0), 1.0))
    return sorted(out)


def share_for_recovery(scores: Sequence[float], weak_correct: Sequence[bool],
                       strong_correct: Sequence[bool], target: float) -> float:
    """The smallest strong-call share whose PGR reaches ``target`` (e.g. 0.9)."""
    from rung.routing.metrics import cpt, pgr_curve

    shares, pgr = pgr_curve(scores, weak_correct, strong_correct)
    return cpt(shares, pgr, target) / 100.0


def write_thresholds(path: Path, thresholds: Sequence[float]) -> None:
    """Set ``[routing] thresholds`` in a TOML file in place, keeping everything else."""
    text = path.read_text()
    line = "thresholds = [" + ", ".join(f"{t:.6f}" for t in thresholds) + "]"
    lines = text.splitlines()
    table = None
    for i, raw in enumerate(lines):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", raw)
        if header:
            table = header.group(1).strip()
            if table == "routing":
                insert_at = i + 1
            continue
        if table == "routing" and re.match(r"^\s*thresholds\s*=", raw):
            lines[i] = line
            break
    else:
        if any(re.match(r"^\s*\[routing\]\s*(#.*)?$", raw) for raw in lines):
            lines.insert(insert_at, line)
        else:
            lines += ["", "[routing]", line]
    path.write_text("\n".join(lines) + "\n")
