"""A regression gate: compare an evaluation summary with a stored baseline.

Metrics where higher is better (apgr, aiq, accuracy_*) may not fall, and metrics where
lower is better (cpt50, cpt80) may not rise, by more than their tolerance. The baseline
is a summary written by ``rung eval routing --json`` (optionally with a ``tolerance``
mapping: metric -> absolute tolerance).
"""

from __future__ import annotations

from typing import Any

LOWER_IS_BETTER = {"cpt50", "cpt80"}
DEFAULT_TOLERANCE = {"apgr": 0.01, "aiq": 0.01, "cpt50": 1.0, "cpt80": 1.0}


def regressions(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per metric that got worse beyond its tolerance (empty: the gate passes)."""
    tol = {**DEFAULT_TOLERANCE, **baseline.get("tolerance", {})}
    out = []
    if baseline.get("benchmark") != current.get("benchmark"):
        return [f"benchmark differs: {baseline.get('benchmark')} vs {current.get('benchmark')}"]
    for scorer, metrics in baseline.get("results", {}).items():
        now = current.get("results", {}).get(scorer)
        if now is None:
            out.append(f"{scorer}: missing from the current run")
            continue
        for metric, base in metrics.items():
            if not isinstance(base, int | float) or metric not in now:
                continue
            t = tol.get(metric, tol.get("accuracy", 0.01) if metric.startswith("accuracy")
                        else 0.01)
            worse = now[metric] - base if metric in LOWER_IS_BETTER else base - now[metric]
            if worse > t:
                out.append(f"{scorer}.{metric}: {base} -> {now[metric]} (tolerance {t})")
    return out
