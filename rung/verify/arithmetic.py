"""The arithmetic check: every equation an answer writes must hold, and a question that is
itself a sum must get its value.

Tiny models get arithmetic wrong with confidence: SmolLM2-135M answers "What is 17+25?"
with "17 + 25 = 32." at a mean token logprob of -0.24, more confident than most of its right
answers, so no logprob threshold can catch it; computing 17 + 25 can. What is checked:

- each ``a op b ... = c`` the answer writes (numbers, ``+ - * / x × ÷ ^``, parentheses; a
  chain ``a = b = c`` pairwise), exactly in rationals, to the precision the right-hand side
  is written in (``10 / 3 = 3.33`` holds);
- when the last user turn asks for one bare expression ("What is 17+25?", "7 times 8"),
  the answer must state its value.

Nothing to check passes: the verifier is for catching a miss, not for proving a hit, so it
is paired with others (the default ladder pairs it with the logprob gate).
"""

from __future__ import annotations

import ast
import itertools
import re
from fractions import Fraction

from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate
from rung.verify.final import canonical, numbers

_WORDS = ((re.compile(r"\s+(?:multiplied\s+by|times)\s+", re.IGNORECASE), " * "),
          (re.compile(r"\s+divided\s+by\s+", re.IGNORECASE), " / "),
          (re.compile(r"\s+plus\s+", re.IGNORECASE), " + "),
          (re.compile(r"\s+minus\s+", re.IGNORECASE), " - "))
_TIMES = re.compile(r"(?<=\d)\s*[xX×]\s*(?=[\d(])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
# A run of arithmetic within a line: numbers, operators, parentheses, spaces and "=".
_RUN = re.compile(r"[\d(][\d \t.+\-*/^()=]*[\d)]")
_SENTENCE_END = re.compile(r"\.(?=\s)|\n")
_WORD = re.compile(r"[A-Za-z]+")
_MAX_OTHER_WORDS = 5  # "What is ...?": a question that is one bare expression
_OPERATOR = re.compile(r"\d\s*[+\-*/^]\s*[\d(]|\)\s*[+\-*/^]")
_MAX_POWER = 64


def _normalise(text: str) -> str:
    text = text.replace("−", "-").replace("÷", "/").replace("$", "").replace("**", "^")
    text = _THOUSANDS.sub("", text)
    return _TIMES.sub(" * ", text)


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            if b == 0:
                raise ValueError("division by zero")
            return a / b
        if isinstance(node.op, ast.BitXor | ast.Pow) and b.denominator == 1 \
                and abs(b) <= _MAX_POWER and (b >= 0 or a != 0):
            return Fraction(a) ** int(b)
    raise ValueError("not arithmetic")


def evaluate(expr: str) -> Fraction | None:
    """The exact value of an arithmetic expression, or None when it is not one."""
    expr = expr.strip()
    if not expr or len(expr) > 200:
        return None
    try:
        return _value(ast.parse(expr.replace("^", "**"), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _holds(left: Fraction, right_text: str, right: Fraction) -> bool:
    """``left`` equals ``right`` to the precision ``right_text`` is written in."""
    if left == right:
        return True
    decimals = len(right_text.split(".")[1]) if "." in right_text else None
    if decimals is None:  # an integer stands for itself, not for a rounding
        return False
    return abs(left - right) <= Fraction(1, 2 * 10**decimals)


def wrong_equations(text: str) -> list[str]:
    """The equations in ``text`` that do not hold, each as ``"a + b = c (is d)"``."""
    out = []
    runs = (r for line in _SENTENCE_END.split(_normalise(text)) for r in _RUN.finditer(line))
    for run in runs:
        parts = [p.strip() for p in run.group().split("=")]
        for left, right in itertools.pairwise(parts):
            if not (_OPERATOR.search(left) or _OPERATOR.search(right)):
                continue
            lv, rv = evaluate(left), evaluate(right)
            if lv is None or rv is None:
                continue
            plain = not _OPERATOR.search(right)
            if not (_holds(lv, right, rv) if plain else lv == rv):
                out.append(f"{left} = {right} (is {canonical(lv)})")
    return out


def asked_value(question: str) -> Fraction | None:
    """The value of the one bare expression a question asks for, if it asks for one."""
    text = _normalise(question)
    for pattern, op in _WORDS:
        text = pattern.sub(op, text)
    runs = [r for r in _RUN.finditer(text) if _OPERATOR.search(r.group())]
    if len(runs) != 1 or "=" in runs[0].group():
        return None
    rest = text[:runs[0].start()] + text[runs[0].end():]
    if len(_WORD.findall(rest)) > _MAX_OTHER_WORDS:
        return None
    return evaluate(runs[0].group())


class ArithmeticVerifier:
    name = "arithmetic"
    needs_logprobs = False

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        return check(request, answer.text)


def check(request: ChatRequest, text: str) -> Verdict:
    wrong = wrong_equations(text)
    if wrong:
        return Verdict(ArithmeticVerifier.name, 1.0, False,
                       f"wrong arithmetic: {wrong[0]}"[:120])
    question = next((m.content for m in reversed(request.messages)
                     if m.role == "user" and isinstance(m.content, str)), "")
    want = asked_value(question)
    if want is None:
        return Verdict(ArithmeticVerifier.name, 0.0, True, "nothing to check")
    stated = numbers(_normalise(text), fractions=True)
    if any(_holds(want, canonical(v), v) for v in stated):
        return Verdict(ArithmeticVerifier.name, 0.0, True, f"states {canonical(want)}")
    return Verdict(ArithmeticVerifier.name, 1.0, False,
                   f"the question's value {canonical(want)} is not in the answer")
