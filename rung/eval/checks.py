"""Verifiable checks of an answer: numeric exact match, a letter, or unit tests run in
the sandbox (:mod:`rung.sandbox`: no network, CPU time and memory limits, a private temp
directory)."""

from __future__ import annotations

import re

from rung.eval.datasets import Item
from rung.sandbox import sandbox_run
from rung.verify.examples import extract_code

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """The model's final number: after 'The answer is' / '####' if present, else the last
    number in the text. Commas and a trailing '.0' are dropped."""
    for marker in (r"answer is", r"####"):
        parts = re.split(marker, text, flags=re.IGNORECASE)
        if len(parts) > 1:
            nums = _NUMBER.findall(parts[-1])
            if nums:
                return _norm(nums[0])
    nums = _NUMBER.findall(text)
    return _norm(nums[-1]) if nums else None


def _norm(n: str) -> str:
    n = n.replace(",", "")
    if "." in n:
        n = n.rstrip("0").rstrip(".")
    return n or "0"


def is_correct(item: Item, answer: str) -> bool:
    if item.dataset == "gsm8k":
        return final_number(answer) == _norm(item.reference)
    if item.dataset == "mc":
        m = re.search(r"\b([A-J])\b", answer.strip().upper())
        return m is not None and m.group(1) == item.reference
    code = extract_code(answer, item.extra["code_prompt"])
    program = f"{code}\n\n{item.reference}\n\ncheck({item.extra['entry_point']})\n"
    return sandbox_run(program)
