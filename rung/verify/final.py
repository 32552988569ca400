r"""The final answer of a worked (math) response, read by one set of rules.

The grader (:mod:`rung.eval.checks`), the self-consistency verifier
(:mod:`rung.verify.consistency`) and the learned verifier's features
(:mod:`rung.verify.features`) all ask what number an answer ended on. They read it here, so
a grader and a verifier cannot disagree about what an answer *was*, only about whether it
is right.

Where the final answer is (the first rule that finds a number wins):

1. after the last ``####`` (how GSM8K's reference solutions and most few-shot answers end);
2. in the last ``\boxed{...}``;
3. after the last "answer is" / "answer:";
4. otherwise the last number anywhere in the text.

In rules 1-3 the answer is the *first* number after the marker, so "The answer is 18. That
is 3 more than 15." reads 18 and "#### 90 cents" reads 90. A marker with no number after it
falls through to the next rule.

What a number is: an optional minus sign (``-`` or U+2212, but not one between two
operands, as in ``5-3``), an optional ``$``, digits with commas only as thousands separators
(``1,234``; a list such as ``2,3,5`` is three numbers), an optional decimal part; a trailing
``%`` is ignored. A final answer may also be a fraction (``3/4``; ``\frac{3}{4}`` inside
``\boxed``), while in the worked steps ``a/b`` is a division of two numbers. Numbers are
exact rationals written in one canonical form, so equal values compare equal as strings:
``"$1,234.50"``, ``"1234.5"`` and ``"1234.50"`` all read ``"1234.5"``, ``"18.00"`` reads
``"18"``, ``"1/2"`` reads ``"0.5"`` and ``"2/6"`` reads ``"1/3"``. That is what GSM8K
grading needs (its references are plain integers) and what comparing samples with each
other needs.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "answer_key", "canonical", "final_choice", "final_number", "final_value", "marked_answer",
    "numbers",
]

_NUMBER = re.compile(
    r"""
    (?<![A-Za-z0-9_.)])              # not inside a word, a number or after an operand
    (?P<sign>[-\u2212])?\$?
    (?P<int>\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)?
    (?P<frac>\.\d+)?
    (?:/(?P<den>[1-9]\d*)(?!\d|\.\d))?
    """,
    re.VERBOSE,
)
_HASHES = re.compile("####")
_MARKED = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(r"\banswer\s*(?:is\b|:)", re.IGNORECASE)
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}")
_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\%|\\\$|\\left|\\right")


def numbers(text: str, *, fractions: bool = False) -> list[Fraction]:
    """Every number in ``text``, in order, as exact values. ``a/b`` is two numbers, as in
    the arithmetic of a worked answer, unless ``fractions`` is set, as for reading a final
    answer such as "3/4 cup"."""
    out = []
    for match in _NUMBER.finditer(text):
        if match.group("int") is None and match.group("frac") is None:
            continue  # the pattern matched only a sign, a "$" or nothing
        whole = (match.group("int") or "0").replace(",", "")
        value = Fraction(whole + (match.group("frac") or ""))
        if match.group("sign"):
            value = -value
        den = match.group("den")
        if den is None:
            out.append(value)
        elif fractions:
            out.append(value / int(den))
        else:
            out.extend((value, Fraction(int(den))))
    return out


def canonical(value: Fraction) -> str:
    """One spelling per value: an integer, an exact decimal, or ``p/q`` when no finite
    decimal is equal to it."""
    num, den = value.numerator, value.denominator
    twos = fives = 0
    rest = den
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"{num}/{den}"
    places = max(twos, fives)
    if places == 0:
        return str(num)
    digits = str(abs(num) * 10**places // den).rjust(places + 1, "0")
    sign = "-" if num < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def marked_answer(text: str) -> str | None:
    """The rest of the line after the last ``####``, stripped, else None: what the answer
    says its final answer is, words included ("90 cents")."""
    found = _MARKED.findall(text)
    return str(found[-1]).strip() if found else None


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                inner = _FRAC.sub(r"\1/\2", text[i:j])
                return _LATEX_NOISE.sub("", _LATEX_TEXT.sub(r"\1", inner))
    return None


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    matches = list(pattern.finditer(text))
    return text[matches[-1].end():] if matches else None


def final_value(text: str) -> Fraction | None:
    """The response's final answer (see the module docstring) as an exact value, or None
    when the text has no number."""
    for span in (_after_last(_HASHES, text), _boxed(text), _after_last(_ANSWER_IS, text)):
        if span is not None:
            found = numbers(span, fractions=True)
            if found:
                return found[0]
    found = numbers(text, fractions=True)
    return found[-1] if found else None


# A multiple-choice answer: a capital letter A-J after the last "answer is" / "answer:",
# or opening the answer, alone or followed by ".", ")" or ":" ("B", "(B)", "B. the field").
_CHOICE_AFTER = re.compile(r"(?i:\banswer\s*(?:is\b|:))\s*\(?([A-J])\)?(?![A-Za-z0-9])")
_CHOICE_FIRST = re.compile(r"\s*\(?([A-J])(?:\)|[.:]|\s*$)")


def final_choice(text: str) -> str | None:
    """The letter a multiple-choice answer chose, or None when it chose none (a text that
    merely starts with "A" or "I" as a word is not a choice)."""
    found = _CHOICE_AFTER.findall(text)
    if found:
        return str(found[-1])
    m = _CHOICE_FIRST.match(text)
    return m.group(1) if m else None


def final_number(text: str) -> str | None:
    """The final answer in canonical form: equal values give equal strings."""
    value = final_value(text)
    return canonical(value) if value is not None else None


def answer_key(text: str) -> str:
    """What two answers must share to agree: the final number, or for an answer without
    one its words (lower case, at most 200 characters)."""
    number = final_number(text)
    if number is not None:
        return number
    return " ".join(re.findall(r"\w+", text.lower()))[:200]
