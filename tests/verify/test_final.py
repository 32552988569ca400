"""The one final-answer reader shared by the grader, self-consistency and the features."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from rung.eval.datasets import gsm8k_reference
from rung.verify.final import (
    answer_key,
    canonical,
    final_choice,
    final_number,
    marked_answer,
    numbers,
)
from tests.conftest import SHARED_DATA

GSM8K_SOLUTION = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.\n#### 18"
)


@pytest.mark.parametrize(("text", "number"), [
    # the three markers, and the fallback
    ("#### 42", "42"),
    ("The answer is 42.", "42"),
    ("Answer: 42", "42"),
    ("\\boxed{42}", "42"),
    ("The final answer is $\\boxed{1,000}$.", "1000"),
    ("first 3 then 7", "7"),
    (GSM8K_SOLUTION, "18"),
    # the first number after a marker, the last marker of its kind
    ("The answer is 18. That is 3 more than 15.", "18"),
    ("#### 1\nwait\n#### 90 cents", "90"),
    ("#### 225 minutes or 3 hours and 45 minutes", "225"),
    ("So the answer is 4.\nNo, the answer is 5.", "5"),
    # "####" before \boxed before "answer is"; a marker with no number falls through
    ("The answer is 20.\n#### 18", "18"),
    ("The answer is 20, so \\boxed{18}", "18"),
    ("2 + 3 = 5\n#### five", "5"),
    ("The answer is unclear; 4 or 6", "4"),
    # number forms
    ("$1,234.50", "1234.5"),
    ("It costs $1,250.00 in total.", "1250"),
    ("1,000,000 people", "1000000"),
    ("-3", "-3"),
    ("\u22124 degrees", "-4"),
    ("It dropped by -$5.", "-5"),
    ("42%", "42"),
    ("18.00", "18"),
    ("18.50", "18.5"),
    ("-0.0", "0"),
    (".5 of it", "0.5"),
    ("She ate 3/4.", "0.75"),
    ("2/6", "1/3"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("\\boxed{\\dfrac{1}{3}\\text{ cups}}", "1/3"),
    # trailing punctuation and things that look like numbers but are not one
    ("The total is 18.", "18"),
    ("So 18!)", "18"),
    ("The score was 10-3", "3"),  # a dash between numbers is no minus sign
    ("primes 2,3,5", "5"),  # a list, not 235
    ("1,2345", "2345"),
    ("7 of H2O", "7"),
    # no number at all
    ("no number", None),
    ("", None),
    ("#### ", None),
])
def test_final_number(text: str, number: str | None) -> None:
    assert final_number(text) == number


@pytest.mark.parametrize(("text", "fractions", "values"), [
    ("5 - 3 = 2", False, [5, 3, 2]),
    ("5-3", False, [5, 3]),
    ("x = -3", False, [-3]),
    ("$1,300 * 10/100 = $130", False, [1300, 10, 100, 130]),  # the operands of a division
    ("$1,300 * 10/100 = $130", True, [1300, Fraction(1, 10), 130]),  # a value
    ("-3/4 cup", True, [Fraction(-3, 4)]),
    ("-3/4 cup", False, [-3, 4]),
    ("1/0", True, [1, 0]),
    ("v1.2.3", False, []),
])
def test_numbers(text: str, fractions: bool, values: list[Fraction]) -> None:
    assert numbers(text, fractions=fractions) == values


@pytest.mark.parametrize(("value", "text"), [
    (Fraction(5), "5"),
    (Fraction(-1, 2), "-0.5"),
    (Fraction(1, 20), "0.05"),
    (Fraction(-1, 8), "-0.125"),
    (Fraction(1, 3), "1/3"),
    (Fraction(-7, 6), "-7/6"),
])
def test_canonical(value: Fraction, text: str) -> None:
    assert canonical(value) == text


@pytest.mark.parametrize(("response", "marked"), [
    ("so 9 * 2 = 18\n#### 18", "18"),
    ("#### 1\nwait\n#### 90 cents", "90 cents"),
    ("The answer is 18", None),
    ("####", ""),
])
def test_marked_answer(response: str, marked: str | None) -> None:
    assert marked_answer(response) == marked


@pytest.mark.parametrize(("one", "other", "agree"), [
    ("So the answer is 4.", "2 + 2 = 4. The answer is 4.", True),
    ("#### $1,250.00", "The answer is 1250", True),
    ("1/2", "0.5", True),
    ("#### 18", "\\boxed{18}", True),
    ("The answer is 41.", "The answer is 42.", False),
    ("Paris", "paris.", True),  # no number: the words are compared
    ("Paris", "Lyon", False),
])
def test_answer_key(one: str, other: str, agree: bool) -> None:
    assert (answer_key(one) == answer_key(other)) is agree


@pytest.mark.parametrize(("text", "letter"), [
    ("B", "B"), ("(B)", "B"), ("B. the electric field", "B"), (" C\n", "C"), ("A.", "A"),
    ("The answer is (D).", "D"), ("Answer: A", "A"), ("the answer is B, not A", "B"),
    ("A dog is an animal.", None),  # "A" and "I" as words are no choice
    ("I think so.", None), ("The answer is a cat.", None), ("The answer is 12.", None),
    ("42", None),
])
def test_final_choice(text: str, letter: str | None) -> None:
    assert final_choice(text) == letter


def test_gsm8k_references_read_as_their_marked_number() -> None:
    """Every GSM8K reference solution's final answer is the number after its ``####``, read
    the way the grader reads it, so graded answers are compared with the right value."""
    path = SHARED_DATA / "routellm" / "gsm8k" / "test.jsonl"
    solutions = [json.loads(line)["answer"] for line in path.read_text().splitlines()]
    assert solutions
    for solution in solutions:
        assert final_number(solution) == final_number(gsm8k_reference(solution)), solution
