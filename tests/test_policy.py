import pytest

from rung.routing.policy import combine, start_tier
from rung.types import Verdict


@pytest.mark.parametrize(
    ("score", "thresholds", "n", "tier"),
    [
        (0.9, (), 3, 0),
        (0.1, (0.5,), 2, 0),
        (0.5, (0.5,), 2, 1),
        (0.4, (0.3, 0.7), 3, 1),
        (0.7, (0.3, 0.7), 3, 2),
        (0.99, (0.3, 0.7), 3, 2),
        (0.0, (0.0, 0.0), 3, 2),
        (0.2, (0.3, 0.7), 3, 0),
    ],
)
def test_start_tier(score: float, thresholds: tuple[float, ...], n: int, tier: int) -> None:
    d = start_tier(score, thresholds, n_tiers=n)
    assert d.tier == tier and d.reason


A, R = Verdict("a", 0.1, True), Verdict("b", 0.9, False)


@pytest.mark.parametrize(
    ("verdicts", "rule", "accept"),
    [
        ([], "all", True),
        ([A], "all", True),
        ([A, R], "all", False),
        ([A, R], "any", True),
        ([R, R], "any", False),
        ([A, R], "mean", False),  # mean 0.5 is not below 0.5
        ([A, A, R], "mean", True),
    ],
)
def test_combine(verdicts: list[Verdict], rule: str, accept: bool) -> None:
    d = combine(verdicts, rule)  # type: ignore[arg-type]
    assert d.accept is accept and d.reason
