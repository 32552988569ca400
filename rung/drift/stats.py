"""Two-sample drift tests: reference window vs recent window, each with a p-value.

Every test is a pure function of two samples and a seed, and returns a :class:`DriftTest`.
P-values of the multivariate and distribution tests come from label permutations, computed
for all permutations at once with matrix products, so a test costs milliseconds, not a
refit per permutation. A permutation p-value is exact (false alarms at rate <= alpha)
as long as the features were computed by a function that did not look at which window a
trace came from; ``rung.drift.features`` fits its feature maps on the pooled sample for
that reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FArr = npt.NDArray[np.float64]

DEFAULT_ALPHA = 0.05
DEFAULT_PERMUTATIONS = 200
PSI_BINS = 10


@dataclass(frozen=True, slots=True)
class DriftTest:
    """One test's outcome. ``drifted`` is ``p_value < threshold``."""

    name: str
    kind: str  # "input", "routing" or "quality"
    statistic: float
    p_value: float
    threshold: float
    drifted: bool
    explanation: str
    n_reference: int
    n_recent: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(
    name: str, kind: str, stat: float, p: float, alpha: float, what: str, n_ref: int, n_rec: int
) -> DriftTest:
    drifted = p < alpha
    verdict = f"p={p:.3g} < {alpha:g}: drift" if drifted else f"p={p:.3g} >= {alpha:g}: ok"
    return DriftTest(
        name=name,
        kind=kind,
        statistic=float(stat),
        p_value=float(p),
        threshold=alpha,
        drifted=drifted,
        explanation=f"{what}; {verdict}",
        n_reference=n_ref,
        n_recent=n_rec,
    )


def permutation_labels(n_ref: int, n_rec: int, permutations: int, seed: int) -> FArr:
    """A (n, 1 + permutations) 0/1 matrix: column 0 the true labels (recent = 1), then
    ``permutations`` random relabellings with the same counts."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(n_ref), np.ones(n_rec)])
    cols = [y] + [rng.permutation(y) for _ in range(permutations)]
    return np.stack(cols, axis=1)


def permutation_p(stats: FArr) -> float:
    """P-value of ``stats[0]`` against ``stats[1:]`` (larger = more extreme), counting the
    observed value itself so it is never 0."""
    observed = stats[0]
    return float((1 + np.sum(stats[1:] >= observed - 1e-12)) / len(stats))


def _ranks(s: FArr) -> FArr:
    """Column-wise ranks, ties averaged."""
    from scipy.stats import rankdata

    out: FArr = np.asarray(rankdata(s, axis=0), dtype=np.float64)
    return out


def _logistic_batch(x: FArr, y: FArr, *, l2: float, max_iter: int = 100, tol: float = 1e-5) -> FArr:
    """L2-penalised logistic regression fitted for every column of ``y`` at once; ``x``
    (m, d) has an unpenalised intercept column first; returns the weights, (d, B).

    Uses Bohning's bound: the logistic Hessian never exceeds X'X / 4, so steps with that
    one fixed matrix (factored once, shared by all columns) decrease the loss monotonically
    and converge to the same optimum as Newton, at the cost of two matrix products per step.
    """
    from scipy.linalg import cho_factor, cho_solve

    d, b = x.shape[1], y.shape[1]
    pen = np.full(d, l2)
    pen[0] = 0.0
    bound = cho_factor(0.25 * (x.T @ x) + np.diag(pen + 1e-6))
    w = np.zeros((d, b))
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30.0, 30.0)))
        step = cho_solve(bound, x.T @ (p - y) + pen[:, None] * w)
        w -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return w


def _standardise(x: FArr) -> FArr:
    sd = x.std(axis=0)
    keep = sd > 1e-12
    out: FArr = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    return out


def classifier_auc(
    x_ref: FArr,
    x_rec: FArr,
    *,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    folds: int = 5,
    l2: float = 10.0,
    seed: int = 0,
    name: str = "input.classifier_auc",
    kind: str = "input",
) -> DriftTest:
    """Domain classifier: can logistic regression tell recent rows from reference rows?

    The statistic is the cross-validated AUC of P(recent | features) (0.5: no better than
    chance). The same folds are reused under every permutation of the window labels.
    """
    x = _standardise(np.vstack([x_ref, x_rec]).astype(np.float64))
    n_ref, n_rec = len(x_ref), len(x_rec)
    n = n_ref + n_rec
    x = np.hstack([np.ones((n, 1)), x])
    y = permutation_labels(n_ref, n_rec, permutations, seed)
    rng = np.random.default_rng(seed + 1)
    fold = rng.permutation(n) % folds
    scores = np.zeros_like(y)
    for k in range(folds):
        tr, te = fold != k, fold == k
        w = _logistic_batch(x[tr], y[tr], l2=l2)
        scores[te] = x[te] @ w
    ranks = _ranks(scores)
    auc = (np.sum(ranks * y, axis=0) - n_rec * (n_rec + 1) / 2) / (n_rec * n_ref)
    p = permutation_p(auc)
    return _result(
        name,
        kind,
        float(auc[0]),
        p,
        alpha,
        f"domain classifier AUC {auc[0]:.3f} (0.5 = windows indistinguishable)",
        n_ref,
        n_rec,
    )


def mmd_rbf(
    x_ref: FArr,
    x_rec: FArr,
    *,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    name: str = "input.mmd_rbf",
    kind: str = "input",
) -> DriftTest:
    """Maximum mean discrepancy (unbiased MMD^2) with a Gaussian kernel whose width is the
    median pairwise distance of the pooled sample (standardised features)."""
    x = _standardise(np.vstack([x_ref, x_rec]).astype(np.float64))
    n_ref, n_rec = len(x_ref), len(x_rec)
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    iu = np.triu_indices(len(x), k=1)
    med = float(np.median(d2[iu])) if len(iu[0]) else 1.0
    k = np.exp(-d2 / (2.0 * med if med > 0 else 2.0))
    y = permutation_labels(n_ref, n_rec, permutations, seed)
    ky = k @ y
    s_rr = np.sum(y * ky, axis=0)  # recent-recent block sum, diagonal included
    s_rf = np.sum((1.0 - y) * ky, axis=0)
    s_ff = float(k.sum()) - s_rr - 2.0 * s_rf
    mmd2 = (
        (s_rr - n_rec) / (n_rec * (n_rec - 1))
        + (s_ff - n_ref) / (n_ref * (n_ref - 1))
        - 2.0 * s_rf / (n_ref * n_rec)
    )
    p = permutation_p(mmd2)
    return _result(
        name,
        kind,
        float(mmd2[0]),
        p,
        alpha,
        f"MMD^2 {mmd2[0]:.4f} (RBF, median width; 0 = same distribution)",
        n_ref,
        n_rec,
    )


def two_proportions(
    k_ref: int,
    n_ref: int,
    k_rec: int,
    n_rec: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    name: str = "routing.escalation_rate",
    kind: str = "routing",
    what: str = "escalation rate",
) -> DriftTest:
    """Pooled two-proportion z-test (two-sided); Fisher's exact test when an expected count
    is below 5, where the normal approximation is poor. The statistic is the difference
    recent - reference."""
    r_ref, r_rec = k_ref / n_ref, k_rec / n_rec
    pooled = (k_ref + k_rec) / (n_ref + n_rec)
    expected = min(pooled * n_ref, pooled * n_rec, (1 - pooled) * n_ref, (1 - pooled) * n_rec)
    if pooled in (0.0, 1.0):
        p = 1.0
    elif expected < 5:
        from scipy.stats import fisher_exact

        p = float(fisher_exact([[k_ref, n_ref - k_ref], [k_rec, n_rec - k_rec]])[1])
    else:
        z = (r_rec - r_ref) / math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_rec))
        p = math.erfc(abs(z) / math.sqrt(2))
    return _result(
        name, kind, r_rec - r_ref, p, alpha, f"{what} {r_ref:.1%} -> {r_rec:.1%}", n_ref, n_rec
    )


def psi(
    ref: Sequence[float] | FArr,
    rec: Sequence[float] | FArr,
    *,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    bins: int = PSI_BINS,
    lo: float = 0.0,
    hi: float = 1.0,
    seed: int = 0,
    name: str = "routing.score_psi",
    kind: str = "routing",
) -> DriftTest:
    """Population stability index over ``bins`` fixed equal-width bins of [lo, hi]
    (values outside are clipped). Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2
    major; the p-value says whether it exceeds what sampling noise gives at these sizes."""
    a, b = np.asarray(ref, dtype=np.float64), np.asarray(rec, dtype=np.float64)
    pooled = np.concatenate([a, b])
    idx = np.clip(((pooled - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
    onehot = np.zeros((len(pooled), bins))
    onehot[np.arange(len(pooled)), idx] = 1.0
    y = permutation_labels(len(a), len(b), permutations, seed)
    c_rec = onehot.T @ y
    c_ref = onehot.sum(axis=0)[:, None] - c_rec
    eps = 1e-4
    q = np.maximum(c_rec / len(b), eps)
    r = np.maximum(c_ref / len(a), eps)
    values = np.sum((q - r) * np.log(q / r), axis=0)
    p = permutation_p(values)
    level = "major" if values[0] > 0.2 else "moderate" if values[0] > 0.1 else "stable"
    return _result(
        name,
        kind,
        float(values[0]),
        p,
        alpha,
        f"PSI {values[0]:.3f} over {bins} bins ({level} by the 0.1/0.2 rule)",
        len(a),
        len(b),
    )


def wasserstein(
    ref: Sequence[float] | FArr,
    rec: Sequence[float] | FArr,
    *,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    name: str = "routing.score_wasserstein",
    kind: str = "routing",
) -> DriftTest:
    """1-Wasserstein (earth mover's) distance between the two empirical distributions,
    i.e. the area between their CDFs, in the values' own units."""
    a, b = np.asarray(ref, dtype=np.float64), np.asarray(rec, dtype=np.float64)
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="stable")
    gaps = np.diff(pooled[order])
    y = permutation_labels(len(a), len(b), permutations, seed)[order]
    f_rec = np.cumsum(y, axis=0)[:-1] / len(b)
    f_ref = np.cumsum(1.0 - y, axis=0)[:-1] / len(a)
    dist = np.abs(f_rec - f_ref).T @ gaps
    p = permutation_p(dist)
    shift = float(b.mean() - a.mean())
    return _result(
        name,
        kind,
        float(dist[0]),
        p,
        alpha,
        f"Wasserstein {dist[0]:.4f} (mean {a.mean():.3f} -> {b.mean():.3f}, {shift:+.3f})",
        len(a),
        len(b),
    )
