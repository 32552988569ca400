"""The verifier's hand-made features: arithmetic re-checks and final-answer parsing."""

from __future__ import annotations

import pytest

from rung.verify.features import (
    FEATURE_NAMES,
    arithmetic_checks,
    response_features,
    safe_eval,
)
from rung.verify.final import marked_answer as final_answer


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("2 + 3 * 4", 14.0),
        ("$1,200 / 4", 300.0),
        ("15 x 2", 30.0),
        ("12 × 3 ÷ 4", 9.0),
        ("50%", 0.5),
        ("-3 + 1", -2.0),
        ("7", 7.0),
        ("1 / 0", None),
        ("2x + 3", None),
        ("__import__('os')", None),
        ("", None),
    ],
)
def test_safe_eval(expr: str, value: float | None) -> None:
    assert safe_eval(expr) == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize(
    ("response", "checked", "wrong"),
    [
        ("She has 16 - 3 = <<16-3=13>>13 eggs.", 1, 0),
        ("She has 16 - 3 = <<16-3=12>>12 eggs.", 1, 1),
        ("Total: 22 + 4 x 12 = 22 + 48 = 70", 2, 0),
        ("Total: 22 + 4 x 12 = 22 + 48 = 72", 2, 1),
        ("So 10 / 3 = 3.33 hours", 1, 0),  # rounded results are fine
        ("(4/20)*100% = 20%", 1, 0),  # percent written either way
        ("There are 5 apples and 3 pears.", 0, 0),
    ],
)
def test_arithmetic_checks(response: str, checked: int, wrong: int) -> None:
    assert arithmetic_checks(response) == (checked, wrong)


@pytest.mark.parametrize(
    ("response", "final"),
    [("so 9 * 2 = 18\n#### 18", "18"), ("#### 1\nwait\n#### 90 cents", "90 cents"), ("18", None)],
)
def test_final_answer(response: str, final: str | None) -> None:
    assert final_answer(response) == final


def test_feature_vector_shape() -> None:
    values = response_features("Tom has 3 apples and buys 4.", "3 + 4 = 8\n#### 8")
    assert len(values) == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, values, strict=True))
    assert named["n_wrong"] == 1.0 and named["no_final"] == 0.0
