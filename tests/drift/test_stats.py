"""The drift statistics on synthetic samples with known answers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rung.drift import stats
from rung.drift.stats import DriftTest

Gen = Callable[[np.random.Generator, bool], tuple[np.ndarray, np.ndarray]]


def _multivariate(rng: np.random.Generator, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = rng.normal(size=(150, 8)), rng.normal(size=(150, 8))
    if shifted:
        b[:, 0] += 0.7
    return a, b


def _scores(rng: np.random.Generator, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    return rng.beta(2, 5, size=300), rng.beta(3 if shifted else 2, 5, size=300)


CASES: list[tuple[str, Gen, Callable[..., DriftTest]]] = [
    ("classifier_auc", _multivariate, stats.classifier_auc),
    ("mmd_rbf", _multivariate, stats.mmd_rbf),
    ("psi", _scores, stats.psi),
    ("wasserstein", _scores, stats.wasserstein),
]


@pytest.mark.parametrize(("name", "gen", "test"), CASES, ids=[c[0] for c in CASES])
def test_same_distribution_gives_roughly_uniform_p(
    name: str, gen: Gen, test: Callable[..., DriftTest]
) -> None:
    rng = np.random.default_rng(1)
    ps = np.array([test(*gen(rng, False), permutations=99, seed=i).p_value for i in range(40)])
    assert 0.3 < ps.mean() < 0.7, ps
    assert (ps < 0.05).sum() <= 6  # ~2 expected; 6+ has probability < 0.5%


@pytest.mark.parametrize(("name", "gen", "test"), CASES, ids=[c[0] for c in CASES])
def test_shifted_distribution_is_flagged(
    name: str, gen: Gen, test: Callable[..., DriftTest]
) -> None:
    rng = np.random.default_rng(2)
    result = test(*gen(rng, True), seed=0)
    assert result.drifted and result.p_value < 0.05
    assert result.threshold == 0.05 and name.split("_")[0] in result.name
    assert "drift" in result.explanation


@pytest.mark.parametrize(("name", "gen", "test"), CASES, ids=[c[0] for c in CASES])
def test_seeded_and_deterministic(name: str, gen: Gen, test: Callable[..., DriftTest]) -> None:
    a, b = gen(np.random.default_rng(3), True)
    assert test(a, b, seed=7) == test(a, b, seed=7)


@pytest.mark.parametrize(
    ("k_ref", "k_rec", "drifted"),
    [
        (60, 60, False),  # 30% -> 30%
        (60, 100, True),  # 30% -> 50%
        (60, 70, False),  # 30% -> 35%: within noise at n=200
        (0, 0, False),  # nothing ever escalates
        (1, 9, True),  # small counts: Fisher's exact test
    ],
)
def test_two_proportions(k_ref: int, k_rec: int, drifted: bool) -> None:
    r = stats.two_proportions(k_ref, 200, k_rec, 200)
    assert r.drifted is drifted
    assert r.statistic == pytest.approx((k_rec - k_ref) / 200)


def test_two_proportions_false_alarm_rate_near_alpha() -> None:
    rng = np.random.default_rng(4)
    ps = [
        stats.two_proportions(
            int(rng.binomial(200, 0.3)), 200, int(rng.binomial(200, 0.3)), 200
        ).p_value
        for _ in range(2000)
    ]
    assert 0.03 < float(np.mean(np.array(ps) < 0.05)) < 0.07


def test_wasserstein_matches_scipy() -> None:
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=50), rng.normal(size=70) + 0.3
    assert stats.wasserstein(a, b).statistic == pytest.approx(wasserstein_distance(a, b))


def test_psi_of_identical_samples_is_zero_and_of_disjoint_is_large() -> None:
    same = np.linspace(0.01, 0.99, 200)
    assert stats.psi(same, same).statistic == pytest.approx(0.0)
    apart = stats.psi(np.full(100, 0.05), np.full(100, 0.95))
    assert apart.statistic > 5 and apart.drifted


def test_classifier_auc_near_one_for_separable_windows() -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(size=(100, 5))
    b = rng.normal(size=(100, 5)) + 5
    r = stats.classifier_auc(a, b)
    assert r.statistic > 0.99 and r.p_value == pytest.approx(1 / 201)
