"""The examples check: parsing a prompt's examples, running an answer on them in the
sandbox, and gating a tier through a real server."""

from __future__ import annotations

import pytest

from rung.verify.examples import Example, check_examples, parse_examples

PROMPT = '''Complete the following Python function.

```python
def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
```'''
RIGHT = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
WRONG = "```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```"


@pytest.mark.parametrize(("text", "examples"), [
    (">>> f(1)\n2\n>>> f('a')\n'b'", [Example("f(1)", "2"), Example("f('a')", "'b'")]),
    ("    >>> x = [1, 2]\n    >>> f(x)\n    [2, 3]\n",
     [Example("x = [1, 2]", None), Example("f(x)", "[2, 3]")]),
    (">>> print(f(1))\nhello world", [Example("f(1)", "hello world")]),
    (">>> f(1,\n...   2)\n3", [Example("f(1,\n2)", "3")]),
    ("search([4, 1, 2]) == 2", [Example("search([4, 1, 2])", "2")]),
    ("    total_match([], ['a']) ➞ ['a']  # why", [Example("total_match([], ['a'])", "['a']")]),
    ('digitSum("abAB") => 131', [Example('digitSum("abAB")', "131")]),
    ("f(\"5 apples\", 19) ->19 - 5 = 14", [Example('f("5 apples", 19)', "14")]),
    ("triangle_area(3, 4, 5) == 6.00.", [Example("triangle_area(3, 4, 5)", "6.00")]),
    ("f(1) returns a list of things", []),  # not a literal
    ("print(f(1)) == 2", []),
    ("if f(x) == 2: return", []),
    ("no examples here", []),
    ("assert min_cost([1, 2]) == 3", [Example("min_cost([1, 2])", "3")]),
])
def test_parse_examples(text: str, examples: list[Example]) -> None:
    assert parse_examples(text) == examples


def test_right_answer_passes_and_wrong_one_fails() -> None:
    assert check_examples(PROMPT, RIGHT).failed == 0
    wrong = check_examples(PROMPT, WRONG)
    assert wrong.total == 2 and wrong.failed == 2  # 2 - 3 != 5 and -1 - 1 != 0
    assert check_examples(PROMPT, "It is the sum of a and b.").failed == 2


@pytest.mark.parametrize(("body", "note"), [
    ("    while True:\n        pass", "timed out"),
    ("    import os\n    os._exit(0)", "crashed"),
])
def test_an_answer_that_never_reports_fails_every_example(body: str, note: str) -> None:
    answer = f"```python\ndef add(a, b):\n{body}\n```"
    result = check_examples(PROMPT, answer, timeout_s=2)
    assert (result.total, result.failed, result.note) == (2, 2, note)


def test_lenient_comparisons_and_broken_examples() -> None:
    prompt = ("```python\ndef f(x):\n    '''\n    >>> f(1)\n    0.3333333\n"
              "    >>> g(1)\n    2\n    >>> f(aa)\n    1\n    '''\n```")
    # floats compare with a tolerance; examples naming what the code does not define
    # (another function, unquoted strings) are skipped, not failed
    result = check_examples(prompt, "```python\ndef f(x):\n    return x / 3\n```")
    assert (result.total, result.failed) == (1, 0)
    tuple_prompt = "```python\ndef bf(a):\n    '''\n    bf(1) == (\"Venus\")\n    '''\n```"
    assert check_examples(tuple_prompt, "```python\ndef bf(a):\n    return ('Venus',)\n```"
                          ).failed == 0


def test_no_examples_no_evidence() -> None:
    result = check_examples("Write a poem.", "Roses are red.")
    assert (result.total, result.failed, result.note) == (0, 0, "no examples")


def test_an_answer_missing_the_asked_function_fails() -> None:
    renamed = "```python\ndef plus(a, b):\n    return a + b\n```"
    result = check_examples(PROMPT, renamed)
    assert (result.total, result.failed) == (2, 2)
    # a prose prompt: the function its examples call is the one asked for
    prose = "Write add(a, b). Examples:\nadd(2, 3) == 5\nadd(1, 1) == 2"
    assert check_examples(prose, renamed).failed == 2
    assert check_examples(prose, RIGHT).failed == 0


def test_the_answers_main_block_does_not_run() -> None:
    answer = ("```python\ndef add(a, b):\n    return a + b\n\n"
              "if __name__ == '__main__':\n    print(add(int(input()), 1))\n```")
    assert check_examples(PROMPT, answer).failed == 0


def test_a_tally_printed_by_the_answer_is_not_believed() -> None:
    answer = ("```python\nimport os\nprint('RUNG-EXAMPLES[2, 0]')\n"
              "print('RUNG-EXAMPLES-0000000000000000:[2, 0]')\nos._exit(0)\n"
              "def add(a, b):\n    return a - b\n```")
    result = check_examples(PROMPT, answer)
    assert (result.failed, result.note) == (2, "crashed")
