"""Hand-made signals that a worked math answer is wrong, read from its text alone.

No reference answer is used: these are what a gateway can see at inference time (the
question and the weak tier's answer). The strongest ones re-check the answer's own
arithmetic ("a op b = c", and GSM8K-style ``<<a*b=c>>`` annotations) and compare the numbers
it uses with the numbers the question gives.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from itertools import pairwise

from rung.verify.final import final_value, marked_answer, numbers

_EXPR = r"[\d \t\.\,\+\-\*/x×÷\(\)\$%]+"
# "<<12*3=36>>" annotations and plain "12 * 3 = 36 = 30 + 6" chains.
_ANNOT = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_CHAIN = re.compile(rf"{_EXPR}(?:={_EXPR})+")
_HEDGES = (
    "assum",
    "approximately",
    "round",
    "however",
    "cannot",
    "can't",
    "not possible",
    "doesn't make sense",
    "does not make sense",
    "wait",
    "mistake",
    "actually",
    "but ",
    "unclear",
    "not enough information",
    "fraction",
    "estimate",
)
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}

FEATURE_NAMES = (
    "n_checks",
    "n_wrong",
    "any_wrong",
    "share_wrong",
    "no_final",
    "final_not_integer",
    "final_negative",
    "final_has_text",
    "final_not_in_body",
    "final_is_question_number",
    "question_numbers_unused",
    "new_numbers_share",
    "log_len",
    "n_lines",
    "hedges",
    "has_division",
    "has_decimal",
    "has_percent",
    "log_final",
)


def safe_eval(expr: str) -> float | None:
    """Value of a plain arithmetic expression, or None if it is not one (or divides by 0)."""
    text = expr.replace(",", "").replace("$", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=\d)\s*x\s*(?=[\d(])", "*", text).replace("%", "/100")
    text = text.strip()
    if not text or not re.search(r"\d", text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("not arithmetic")

    try:
        value = ev(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _agrees(value: float, claimed: float) -> bool:
    # "%" is read as /100, and people write "x% = 20%" or "0.2 * 100 = 20%" alike, so a
    # factor of 100 either way is accepted; so is a result rounded to a whole or cents.
    for v in (value, value * 100, value / 100):
        if math.isclose(v, claimed, rel_tol=1e-3, abs_tol=1e-6):
            return True
        if any(abs(round(v, d) - claimed) < 1e-9 for d in (0, 1, 2)):
            return True
    return False


def _is_expression(text: str) -> bool:
    return bool(re.search(r"\d\s*[-+*/x×÷]\s*[\d(.$]", text))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def arithmetic_checks(response: str) -> tuple[int, int]:
    """(equalities checked, equalities whose two sides differ) over the answer's arithmetic."""
    # Keyed without spaces, so "16 - 3 = <<16-3=13>>13" counts as one statement.
    pairs: set[tuple[str, str]] = set()
    for match in _ANNOT.finditer(response):
        pairs.add((_squash(match.group(1)), _squash(match.group(2))))
    for match in _CHAIN.finditer(_ANNOT.sub(" ", response)):
        parts = [_squash(p) for p in match.group(0).split("=")]
        pairs.update(pairwise(parts))
    checked = wrong = 0
    for left, right in pairs:
        if not (_is_expression(left) or _is_expression(right)):
            continue
        lv, rv = safe_eval(left), safe_eval(right)
        if lv is None or rv is None:
            continue
        checked += 1
        if not _agrees(lv, rv):
            wrong += 1
    return checked, wrong


def _numbers(text: str) -> list[float]:
    return [float(n) for n in numbers(text)]


def response_features(prompt: str, response: str) -> list[float]:
    """The values of FEATURE_NAMES for one (question, answer) pair."""
    checked, wrong = arithmetic_checks(response)
    final_text = marked_answer(response)
    value = final_value(response)
    final = float(value) if value is not None else None
    body_text = response.rsplit("####", 1)[0]
    q_nums = set(_numbers(prompt))
    r_nums = _numbers(body_text)
    r_set = set(r_nums)
    lower = response.lower()
    letters = re.sub(r"[\d\s\.\,\$%\-]", "", final_text or "")
    return [
        float(checked),
        float(wrong),
        float(wrong > 0),
        wrong / checked if checked else 0.0,
        float(final_text is None),
        float(final is not None and abs(final - round(final)) > 1e-9),
        float(final is not None and final < 0),
        float(bool(letters)),
        float(final is not None and final not in r_set),
        float(final is not None and final in q_nums),
        len(q_nums - r_set) / len(q_nums) if q_nums else 0.0,
        len(r_set - q_nums) / len(r_set) if r_set else 0.0,
        math.log1p(len(response)),
        float(response.count("\n")),
        float(sum(lower.count(h) for h in _HEDGES)),
        float("/" in body_text or "÷" in body_text),
        float(bool(re.search(r"\d\.\d", body_text))),
        float("%" in prompt or "percent" in prompt.lower()),
        math.log1p(abs(final)) if final is not None else 0.0,
    ]
