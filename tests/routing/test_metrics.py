"""Router metrics on tables small enough to check by hand."""

from __future__ import annotations

import pytest

from rung.routing.metrics import evaluate, oracle_scores, pgr_curve, random_scores

# 4 items; weak accuracy 2/4, strong 3/4, so the gap is 1 item; gains are +1, 0, +1, -1.
W = [False, True, False, True]
S = [True, True, True, False]


@pytest.mark.parametrize(
    ("scores", "expected_pgr"),
    [
        # perfect order: +1, +1, 0, -1
        ([0.9, 0.5, 0.8, 0.1], [0.0, 1.0, 2.0, 2.0, 1.0]),
        # reversed: -1 first, then 0, then the two +1 items
        ([0.1, 0.5, 0.2, 0.9], [0.0, -1.0, -1.0, 0.0, 1.0]),
        # all tied = random in expectation: linear from 0 to 1
        ([0.3, 0.3, 0.3, 0.3], [0.0, 0.25, 0.5, 0.75, 1.0]),
        # a tie between a +1 and the -1 item at the top averages to 0 each
        ([0.9, 0.0, 0.5, 0.9], [0.0, 0.0, 0.0, 1.0, 1.0]),
    ],
)
def test_pgr_curve(scores: list[float], expected_pgr: list[float]) -> None:
    shares, pgr = pgr_curve(scores, W, S)
    assert shares.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert pgr.tolist() == pytest.approx(expected_pgr)


@pytest.mark.parametrize(
    ("scores", "apgr", "cpt50", "cpt80"),
    [
        # trapezoids over width 0.25: (0+1)/2 + (1+2)/2 + (2+2)/2 + (2+1)/2 = 5.5 -> 1.375
        ([0.9, 0.5, 0.8, 0.1], 1.375, 25.0, 25.0),
        ([0.3, 0.3, 0.3, 0.3], 0.5, 50.0, 100.0),
        # (0-1)/2 + (-1-1)/2 + (-1+0)/2 + (0+1)/2 = -1.5 -> -0.375
        ([0.1, 0.5, 0.2, 0.9], -0.375, 100.0, 100.0),
    ],
)
def test_evaluate(scores: list[float], apgr: float, cpt50: float, cpt80: float) -> None:
    r = evaluate(scores, W, S)
    assert r.apgr == pytest.approx(apgr)
    assert r.cpt50 == pytest.approx(cpt50)
    assert r.cpt80 == pytest.approx(cpt80)
    assert (r.weak_accuracy, r.strong_accuracy) == (0.5, 0.75)


def test_baselines() -> None:
    assert evaluate(random_scores(4), W, S).apgr == pytest.approx(0.5)
    assert oracle_scores(W, S).tolist() == [1.0, 0.0, 1.0, -1.0]
    assert evaluate(oracle_scores(W, S), W, S).apgr == pytest.approx(1.375)


@pytest.mark.parametrize(
    ("scores", "weak", "strong"),
    [
        ([], [], []),
        ([0.1], [True, False], [True, True]),
        ([0.1, 0.2], [True, False], [True, False]),  # no gap to recover
        ([float("nan"), 0.2], [False, False], [True, True]),
    ],
)
def test_rejects_bad_tables(scores: list[float], weak: list[bool], strong: list[bool]) -> None:
    with pytest.raises(ValueError):
        pgr_curve(scores, weak, strong)
