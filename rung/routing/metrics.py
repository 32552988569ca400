"""Router quality as RouteLLM measures it: performance gap recovered vs strong-call share.

A router gives each item a score (higher = send to the strong model). A threshold is a
quantile, so sending the top ``k`` of ``n`` items to the strong model spends a share
``k / n`` of strong calls. The routed accuracy at that share, rescaled so the weak model
alone is 0 and the strong model alone is 1, is the PGR (performance gap recovered).
APGR is the area under PGR over shares in [0, 1] (random routing = 0.5); CPT(x) is the
smallest share of strong calls whose PGR reaches x.

Ties in the scores are resolved by expectation: items with equal scores are split as a
random threshold would split them, so a constant scorer is exactly the random router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RouterReport:
    """Summary of one scorer on one outcome table."""

    apgr: float
    cpt50: float  # percent of strong calls to recover 50% of the gap
    cpt80: float  # percent of strong calls to recover 80% of the gap
    weak_accuracy: float
    strong_accuracy: float


def pgr_curve(
    scores: Sequence[float] | FloatArray,
    weak_correct: Sequence[bool] | npt.NDArray[np.bool_],
    strong_correct: Sequence[bool] | npt.NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray]:
    """Shares ``k/n`` for k = 0..n and the PGR reached by sending the top k to strong."""
    s = np.asarray(scores, dtype=np.float64)
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    n = s.shape[0]
    if n == 0 or weak.shape[0] != n or strong.shape[0] != n:
        raise ValueError("scores and outcomes must be non-empty and of equal length")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    gap = float(strong.sum() - weak.sum())
    if gap <= 0:
        raise ValueError("the strong model is not better than the weak one on these items")
    gain = strong - weak
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    sorted_gain = gain[order]
    # Replace each item's gain by its tie group's mean: the expected value under a
    # random tie-break.
    _, starts, counts = np.unique(-sorted_scores, return_index=True, return_counts=True)
    group_sums = np.add.reduceat(sorted_gain, starts)
    sorted_gain = np.repeat(group_sums / counts, counts)
    cum = np.concatenate([[0.0], np.cumsum(sorted_gain)])
    shares = np.arange(n + 1, dtype=np.float64) / n
    return shares, cum / gap


def apgr(shares: FloatArray, pgr: FloatArray) -> float:
    """Area under the PGR curve over strong-call shares in [0, 1]."""
    return float(np.sum((pgr[1:] + pgr[:-1]) * np.diff(shares)) / 2.0)


def cpt(shares: FloatArray, pgr: FloatArray, target: float) -> float:
    """Smallest strong-call share, in percent, whose PGR reaches ``target`` (e.g. 0.5)."""
    hit = np.flatnonzero(pgr >= target - 1e-12)
    return 100.0 * float(shares[hit[0]]) if hit.size else 100.0


def evaluate(
    scores: Sequence[float] | FloatArray,
    weak_correct: Sequence[bool] | npt.NDArray[np.bool_],
    strong_correct: Sequence[bool] | npt.NDArray[np.bool_],
) -> RouterReport:
    """APGR, CPT(50%), CPT(80%) and both models' accuracies for one scorer."""
    shares, pgr = pgr_curve(scores, weak_correct, strong_correct)
    return RouterReport(
        apgr=apgr(shares, pgr),
        cpt50=cpt(shares, pgr, 0.5),
        cpt80=cpt(shares, pgr, 0.8),
        weak_accuracy=float(np.mean(np.asarray(weak_correct, dtype=np.float64))),
        strong_accuracy=float(np.mean(np.asarray(strong_correct, dtype=np.float64))),
    )


def random_scores(n: int) -> FloatArray:
    """The random router in expectation: every item tied."""
    return np.zeros(n, dtype=np.float64)


def oracle_scores(
    weak_correct: Sequence[bool] | npt.NDArray[np.bool_],
    strong_correct: Sequence[bool] | npt.NDArray[np.bool_],
) -> FloatArray:
    """The best possible router: strong-only wins first, weak-only wins last."""
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    return strong - weak
