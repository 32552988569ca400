"""Surface features of a prompt that track how hard it is: length, how many numbers it
gives, whether it needs percentages, fractions or decimals, how many answer options it has.
"""

from __future__ import annotations

import math
import re

_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")
_FRACTION = re.compile(
    r"\d+/\d+|\bhalf\b|\bthird\b|\bquarter\b|\btwice\b|\bdouble\b", re.IGNORECASE
)
_OPTION = re.compile(r"^[A-D]\.\s", re.MULTILINE)

STRUCTURE_NAMES = (
    "log_chars",
    "log_words",
    "n_numbers",
    "n_distinct_numbers",
    "n_sentences",
    "percent",
    "fractions",
    "decimals",
    "n_options",
    "log_option_chars",
    "question_marks",
)


def structure_features(prompt: str) -> list[float]:
    """The values of STRUCTURE_NAMES for one prompt."""
    nums = _NUM.findall(prompt)
    options = [m.end() for m in _OPTION.finditer(prompt)]
    option_chars = len(prompt) - prompt.find("\nA. ") if options else 0
    return [
        math.log1p(len(prompt)),
        math.log1p(len(prompt.split())),
        float(len(nums)),
        float(len(set(nums))),
        float(len(re.findall(r"[.?!](?:\s|$)", prompt))),
        float("%" in prompt or "percent" in prompt.lower()),
        float(len(_FRACTION.findall(prompt))),
        float(len(re.findall(r"\d\.\d", prompt))),
        float(len(options)),
        math.log1p(max(option_chars, 0)),
        float(prompt.count("?")),
    ]
