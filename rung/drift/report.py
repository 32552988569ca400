"""Compare a reference window of traces with a recent one: every drift test, one report.

Three families: *input* (is the traffic itself different: domain classifier and MMD on
the router's features), *routing* (does the router behave differently: escalation rate,
router-score distribution) and *quality* (do verifiers judge answers differently: each
tier/verifier's score distribution and acceptance rate). Each test is reported at
``alpha``; the overall flag applies a Bonferroni correction over the tests that ran, so
the chance of a false overall alarm stays at most ``alpha`` however many verifiers exist.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rung.drift import stats
from rung.drift.features import (
    last_user_message,
    numeric_features,
    text_features,
    verifier_scores,
)
from rung.drift.stats import DriftTest
from rung.store.base import TraceStore
from rung.store.feedback import SHADOW, SHADOW_FIRST, Feedback
from rung.store.trace import Trace


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """How to compare. ``max_traces`` caps each window by a seeded random sample: the tests
    have ample power at a few hundred traces and their cost grows with n^2 (MMD)."""

    alpha: float = stats.DEFAULT_ALPHA
    permutations: int = stats.DEFAULT_PERMUTATIONS
    min_traces: int = 50
    max_traces: int | None = 1000
    embed: bool = False
    seed: int = 0


@dataclass
class DriftReport:
    """Every test that ran, plus the router-score and verifier-score samples behind them."""

    n_reference: int
    n_recent: int
    needed: int
    alpha: float
    features: str = "none"  # "text", "numeric", or "none" when input tests were skipped
    tests: list[DriftTest] = field(default_factory=list)
    samples: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def enough(self) -> bool:
        return min(self.n_reference, self.n_recent) >= self.needed

    @property
    def corrected_alpha(self) -> float:
        return self.alpha / max(1, len(self.tests))

    @property
    def drifted(self) -> bool:
        """Any test below ``alpha / number of tests`` (Bonferroni)."""
        return any(t.p_value < self.corrected_alpha for t in self.tests)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "enough": self.enough,
            "needed": self.needed,
            "n_reference": self.n_reference,
            "n_recent": self.n_recent,
            "alpha": self.alpha,
            "corrected_alpha": self.corrected_alpha,
            "features": self.features,
            "seconds": round(self.seconds, 3),
            "tests": [t.as_dict() for t in self.tests],
        }


def _sample(traces: Sequence[Trace], cap: int | None, seed: int) -> list[Trace]:
    if cap is None or len(traces) <= cap:
        return list(traces)
    keep = np.sort(np.random.default_rng(seed).choice(len(traces), size=cap, replace=False))
    return [traces[int(i)] for i in keep]


def compare(
    reference: Sequence[Trace], recent: Sequence[Trace], *, options: DriftOptions | None = None,
    feedback: Sequence[Feedback] = (),
) -> DriftReport:
    """Run every applicable test on the successful traces of both windows.

    BLAS is held to one thread meanwhile: the tests are many small matrix products, on
    which OpenBLAS's threads spin instead of helping (on a busy 2-core machine one report
    took 20x longer with them).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _compare(reference, recent, options=options, feedback=feedback)


def _ratings(feedback: Sequence[Feedback]) -> dict[str, dict[str, float]]:
    """trace id -> {source: mean score} (users' ratings and shadow labels apart)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for fb in feedback:
        acc = sums.setdefault(fb.trace_id, {}).setdefault(fb.source, [0.0, 0.0])
        acc[0] += fb.score
        acc[1] += 1
    return {tid: {src: total / n for src, (total, n) in by.items()} for tid, by in sums.items()}


def _quality(trace: Trace, ratings: dict[str, dict[str, float]]) -> dict[str, tuple[float, bool]]:
    """Every quality signal of a trace: its verdicts, and the feedback on its answer as
    ``"feedback/<tier>"`` (a user's) or ``"shadow/<tier>"`` (score 1 - rating: higher is
    worse, as a verifier's; accepted when the rating is at least 0.5)."""
    out = verifier_scores(trace)
    for source, mean in ratings.get(trace.id, {}).items():
        if source == SHADOW_FIRST:  # the first tier's agreement: no verdict on this answer
            continue
        key = "shadow" if source == SHADOW else "feedback"
        out[f"{key}/{trace.tier}"] = (1.0 - mean, mean >= 0.5)
    return out


def _compare(
    reference: Sequence[Trace], recent: Sequence[Trace], *, options: DriftOptions | None = None,
    feedback: Sequence[Feedback] = (),
) -> DriftReport:
    o = options or DriftOptions()
    started = time.perf_counter()
    ref = _sample([t for t in reference if t.status == "ok"], o.max_traces, o.seed)
    rec = _sample([t for t in recent if t.status == "ok"], o.max_traces, o.seed + 1)
    report = DriftReport(
        n_reference=len(ref), n_recent=len(rec), needed=o.min_traces, alpha=o.alpha
    )
    if not report.enough:
        return report
    s_ref = [t.score for t in ref if t.score is not None]
    s_rec = [t.score for t in rec if t.score is not None]
    has_scores = min(len(s_ref), len(s_rec)) >= o.min_traces
    ratings = _ratings(feedback)
    v_ref = [_quality(t, ratings) for t in ref]
    v_rec = [_quality(t, ratings) for t in rec]
    keys = [
        k
        for k in sorted({k for v in v_ref for k in v} & {k for v in v_rec for k in v})
        if min(sum(k in v for v in v_ref), sum(k in v for v in v_rec)) >= o.min_traces
    ]
    # Enough permutations that the smallest possible p-value, 1 / (permutations + 1), can
    # pass the Bonferroni threshold of the overall flag.
    planned = 3 + 2 * has_scores + 3 * len(keys)
    perms = max(o.permutations, math.ceil(2 * planned / o.alpha) - 1)
    seeds = iter(range(o.seed, o.seed + 1000))
    report.tests += _input_tests(report, ref, rec, o, perms, seeds)

    report.tests.append(
        stats.two_proportions(
            sum(t.escalated for t in ref),
            len(ref),
            sum(t.escalated for t in rec),
            len(rec),
            alpha=o.alpha,
        )
    )
    if has_scores:
        report.samples["router score"] = (s_ref, s_rec)
        report.tests.append(
            stats.psi(s_ref, s_rec, seed=next(seeds), alpha=o.alpha, permutations=perms)
        )
        report.tests.append(
            stats.wasserstein(s_ref, s_rec, seed=next(seeds), alpha=o.alpha, permutations=perms)
        )

    for key in keys:
        a = [v[key] for v in v_ref if key in v]
        b = [v[key] for v in v_rec if key in v]
        sa, sb = [s for s, _ in a], [s for s, _ in b]
        report.samples[f"verifier {key}"] = (sa, sb)
        for test, label in ((stats.psi, "psi"), (stats.wasserstein, "wasserstein")):
            report.tests.append(test(sa, sb, seed=next(seeds), kind="quality",
                                     name=f"quality.{key}.{label}", alpha=o.alpha,
                                     permutations=perms))
        report.tests.append(
            stats.two_proportions(
                sum(not ok for _, ok in a),
                len(a),
                sum(not ok for _, ok in b),
                len(b),
                alpha=o.alpha,
                kind="quality",
                name=f"quality.{key}.reject_rate",
                what="reject rate",
            )
        )
    report.seconds = time.perf_counter() - started
    return report


def _input_tests(
    report: DriftReport,
    ref: list[Trace],
    rec: list[Trace],
    o: DriftOptions,
    perms: int,
    seeds: Iterable[int],
) -> list[DriftTest]:
    seed = iter(seeds)
    t_ref = [p for p in map(last_user_message, ref) if p is not None]
    t_rec = [p for p in map(last_user_message, rec) if p is not None]
    if min(len(t_ref), len(t_rec)) >= o.min_traces:
        x, _ = text_features(t_ref + t_rec, embed=o.embed, seed=o.seed)
        report.features = "text+minilm" if o.embed else "text"
        n = len(t_ref)
    else:
        x, _ = numeric_features(ref + rec)
        report.features = "numeric"
        n = len(ref)
    return [
        stats.classifier_auc(x[:n], x[n:], alpha=o.alpha, permutations=perms, seed=next(seed)),
        stats.mmd_rbf(x[:n], x[n:], alpha=o.alpha, permutations=perms, seed=next(seed)),
    ]


def compare_windows(
    store: TraceStore,
    *,
    reference: tuple[float | None, float | None],
    recent: tuple[float | None, float | None],
    options: DriftOptions | None = None,
) -> DriftReport:
    """Read both windows (``(since, until)`` unix seconds, None = open) and compare them."""
    # Chat requests only: embedding traffic has no prompt or answer to drift.
    ref = [t for t in store.query(since=reference[0], until=reference[1], errors=False)
           if t.endpoint == "chat"]
    rec = [t for t in store.query(since=recent[0], until=recent[1], errors=False)
           if t.endpoint == "chat"]
    # feedback comes after its answer: all of it since the reference window began
    return compare(ref, rec, options=options, feedback=store.feedback(since=reference[0]))


def drift_status(
    store: TraceStore,
    *,
    reference_s: float,
    recent_s: float,
    threshold_p: float = stats.DEFAULT_ALPHA,
    max_traces: int = 500,
    min_traces: int = 50,
    permutations: int = stats.DEFAULT_PERMUTATIONS,
    now: float | None = None,
) -> dict[str, Any]:
    """The server's periodic check: the last ``recent_s`` seconds against the
    ``reference_s`` seconds before them. CPU-bound and synchronous: run it in a thread.

    Returns ``{"drifted", "enough", "n_reference", "n_recent", "needed", "seconds",
    "tests": {name: {"statistic", "p_value", "drifted", "explanation"}}}``; ``drifted``
    is the Bonferroni-corrected overall flag and is False when there are too few traces.
    """
    t = time.time() if now is None else now
    opts = DriftOptions(
        alpha=threshold_p, permutations=permutations, min_traces=min_traces, max_traces=max_traces
    )
    started = time.perf_counter()
    report = compare_windows(
        store,
        reference=(t - recent_s - reference_s, t - recent_s),
        recent=(t - recent_s, t),
        options=opts,
    )
    return {
        "drifted": report.drifted,
        "enough": report.enough,
        "n_reference": report.n_reference,
        "n_recent": report.n_recent,
        "needed": report.needed,
        "features": report.features,
        "seconds": round(time.perf_counter() - started, 3),
        "tests": {
            x.name: {
                "kind": x.kind,
                "statistic": x.statistic,
                "p_value": x.p_value,
                "drifted": x.drifted,
                "explanation": x.explanation,
            }
            for x in report.tests
        },
    }


def render_text(report: DriftReport) -> str:
    """A table: test, statistic, p, threshold, DRIFT/ok; then each test's explanation."""
    lines = [
        (
            f"reference: {report.n_reference} traces, recent: {report.n_recent} traces, "
            f"input features: {report.features}"
        )
    ]
    if not report.enough:
        lines.append(
            f"too few traces: need at least {report.needed} successful traces in each window"
        )
        return "\n".join(lines)
    width = max([len(t.name) for t in report.tests] + [4])
    lines.append(f"{'TEST':<{width}}  {'STATISTIC':>10}  {'P':>8}  {'THRESHOLD':>9}  RESULT")
    for t in report.tests:
        lines.append(
            f"{t.name:<{width}}  {t.statistic:>10.4f}  {t.p_value:>8.4f}  "
            f"{t.threshold:>9.3g}  {'DRIFT' if t.drifted else 'ok'}"
        )
    lines.append("")
    lines += [f"{t.name}: {t.explanation}" for t in report.tests]
    best = min(report.tests, key=lambda t: t.p_value)
    lines.append("")
    lines.append(
        f"overall: {'DRIFT' if report.drifted else 'ok'} (smallest p {best.p_value:.3g}"
        f" from {best.name}; Bonferroni threshold {report.alpha:g}/{len(report.tests)}"
        f" = {report.corrected_alpha:.3g})"
    )
    return "\n".join(lines)
