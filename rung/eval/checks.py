"""Verifiable checks of an answer: numeric exact match, a letter, or unit tests run in
the sandbox (:mod:`rung.sandbox`: no network, CPU time and memory limits, a private temp
directory)."""

from __future__ import annotations

import re

from rung.eval.datasets import Item
from rung.sandbox import sandbox_run
from rung.verify.examples import extract_code
from rung.verify.final import final_number


def is_correct(item: Item, answer: str) -> bool:
    if item.dataset == "gsm8k":
        return final_number(answer) == final_number(item.reference)
    if item.dataset == "mc":
        m = re.search(r"\b([A-J])\b", answer.strip().upper())
        return m is not None and m.group(1) == item.reference
    code = extract_code(answer, item.extra["code_prompt"])
    program = f"{code}\n\n{item.reference}\n\ncheck({item.extra['entry_point']})\n"
    return sandbox_run(program)
