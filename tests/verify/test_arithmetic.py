"""The arithmetic check on the answers tiny models really give."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rung.types import ChatRequest, Message
from rung.verify.arithmetic import asked_value, check, evaluate, wrong_equations


def ask(q: str) -> ChatRequest:
    return ChatRequest(messages=(Message("user", q),))


@pytest.mark.parametrize(("text", "wrong"), [
    ("17 + 25 = 32.", ["17 + 25 = 32 (is 42)"]),
    ("12*13 = 198\n\nThis is a multi-digit number", ["12*13 = 198 (is 156)"]),
    ("17 + 25 = 42.", []),
    ("He pays $5 x 3 = $15 in all.", []),
    ("1,200 + 300 = 1,500", []),
    ("10 / 3 = 3.33, so each gets 3.33", []),
    ("2/3 = 0.6", ["2/3 = 0.6 (is 2/3)"]),
    ("2 + 3 = 5 = 6 - 1", []),
    ("2 + 3 = 5 = 7 - 1", ["5 = 7 - 1 (is 5)"]),
    ("60 * 3 = 180 miles. 180 + 20 = 210 miles", ["180 + 20 = 210 (is 200)"]),
    ("x = 5 and y = 3", []),
    ("1. Red\n2. Blue\n3. Green", []),
    ("20% of 50 = 10", []),
    ("2^10 = 1024 and 5 ÷ 2 = 2.5", []),
    ("1/0 = 7", []),
])
def test_wrong_equations(text: str, wrong: list[str]) -> None:
    assert wrong_equations(text) == wrong


@pytest.mark.parametrize(("question", "value"), [
    ("What is 17+25?", Fraction(42)),
    ("What is 7 times 8?", Fraction(56)),
    ("Compute (3 + 4) * 2", Fraction(14)),
    ("What is 100 divided by 8?", Fraction(25, 2)),
    ("Call me at 555-1234 tomorrow about the party and the cake, please", None),
    ("Name three colors.", None),
    ("What is 2 + 2 and 3 + 3?", None),
])
def test_asked_value(question: str, value: Fraction | None) -> None:
    assert asked_value(question) == value


def test_verdicts() -> None:
    assert not check(ask("What is 17+25?"), "17 + 25 = 32.").accept
    assert not check(ask("What is 17+25?"), "The answer is 32.").accept
    assert check(ask("What is 17+25?"), "17 + 25 = 42").accept
    assert check(ask("What is 100 divided by 8?"), "It is 12.5").accept
    v = check(ask("Name three colors."), "1. Red\n2. Blue\n3. Green")
    assert v.accept and v.detail == "nothing to check"


def test_evaluate_refuses_what_is_not_arithmetic() -> None:
    assert evaluate("__import__('os')") is None
    assert evaluate("9 ** 9 ** 9") is None  # no huge powers
    assert evaluate("2 ^ 3") == 8
