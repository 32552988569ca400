"""Verifiable checks of an answer: numeric exact match, a letter, unit tests run in
the sandbox (:mod:`rung.sandbox`: no network, CPU time and memory limits, a private temp
directory), or BFCL's check of the tool calls made (:mod:`rung.eval.bfcl`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rung.eval import bfcl
from rung.eval.datasets import Item
from rung.sandbox import sandbox_run
from rung.types import ToolCall
from rung.verify.examples import extract_code
from rung.verify.final import final_number


def check(item: Item, answer: str, calls: Sequence[ToolCall] = ()) -> bfcl.Result:
    """The verdict on an answer (its text and the tool calls it made), with why where the
    check can say (tool calls); the text checks say only right or wrong."""
    if item.case is not None:
        return bfcl.check(item.case, calls)
    right = is_correct(item, answer)
    return bfcl.Result(right, "")


def is_correct(item: Item, answer: str) -> bool:
    """Whether a text answer passes the item's check (tool-calling items: see ``check``)."""
    if item.case is not None:
        return bfcl.check(item.case, ()).correct
    if item.dataset == "gsm8k":
        return final_number(answer) == final_number(item.reference)
    if item.dataset == "mc":
        m = re.search(r"\b([A-J])\b", answer.strip().upper())
        return m is not None and m.group(1) == item.reference
    code = extract_code(answer, item.extra["code_prompt"])
    program = f"{code}\n\n{item.reference}\n\ncheck({item.extra['entry_point']})\n"
    return sandbox_run(program)
