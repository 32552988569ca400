"""Asking a local model for further calls after it made one: parallel calls under ``auto``.

Left free (``tool_choice`` auto), the local Qwen2.5-Coder models write one call and end
their answer, even where the task wants two to four (BFCL's parallel categories: 0 right
for both); held by a grammar to a JSON list from the start they make several
(``bench/forced_parallel.py``). A continuation asks after the fact: once a free answer
ends after its calls, with no other content, the model is shown those calls as an open
JSON list (compact, tokenized whole) and its next token decides. Greedy, it closed the
list on almost every BFCL item that wants more calls; but the probability it gives to
going on (a token opening with ``,``) against closing (``]``) separates the two kinds of
item by orders of magnitude (``bench/more_calls_share.py``: on the 0.5B, at most 0.0031
on the 37 one-call items, at least 0.004 on 34 of the 37 that want more). So it goes on where that
share is at least a threshold (``more_calls_share``, chosen per model by
cross-validation: docs/tool-calling.md), and the next call is written under a grammar
that holds it to an offered tool and its schema; then the same question again. What it
adds is appended to the answer in the answer's own form. Its cost is the list's tokens
evaluated (tens per call; the prompt's KV is still held) and the added calls' tokens.

A call that repeats one already made ends the continuation and is dropped (a small model
held to a list may write the same call again and again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rung.tools.grammar import call_schema
from rung.tools.parse import CallReader, calls_in
from rung.tools.render import offered
from rung.types import ChatRequest, ToolCall, ToolSpec

_ROOT = re.compile(r"^root ::=", re.MULTILINE)
MAX_CALLS = 16  # calls in one answer, the free answer's included


def applies(request: ChatRequest) -> bool:
    """Whether further calls may be asked for: tools offered under ``auto`` (or no
    choice) and ``parallel_tool_calls`` not false. (With ``logprobs``, the added calls'
    tokens come without them: the answer's logprobs are the free answer's.)"""
    choice = request.tool_choice
    return (offered(request) and (choice is None or choice.mode == "auto")
            and request.parallel_tool_calls is not False)


@dataclass(frozen=True)
class Continuation:
    """The calls a free answer made, and its form."""

    calls: tuple[ToolCall, ...]
    bare: bool  # the answer was bare JSON (added calls are appended as bare JSON too)

    def render(self, calls: Sequence[ToolCall]) -> str:
        """``calls`` as text to append to the answer, in a form its parser reads as further
        calls after the ones it holds."""
        objs = [json.dumps(_as_object(c), ensure_ascii=False) for c in calls]
        if self.bare:
            return "".join("\n" + o for o in objs)
        return "".join(f"\n<tool_call>\n{o}\n</tool_call>" for o in objs)


def plan(text: str) -> Continuation | None:
    """The continuation of a free answer, or None when the answer is not calls alone
    (text with or instead of calls is the model's choice to answer; it is left as is)."""
    reader = CallReader()
    content, calls = reader.push(text)
    rest, more = reader.finish()
    calls += more
    if not calls or (content + rest).strip():
        return None
    return Continuation(calls=tuple(calls), bare=text.lstrip()[:1] in "{[")


def list_prefix(calls: Sequence[ToolCall]) -> str:
    """The calls as the open JSON list the model goes on from."""
    return "[" + ", ".join(json.dumps(_as_object(c), ensure_ascii=False) for c in calls)


def go_on_share(logits: npt.NDArray[np.float32], go_on: npt.NDArray[np.int64],
                close: npt.NDArray[np.int64]) -> float:
    """At the end of a call in the open list, the share of the next token's probability
    that goes on to another call rather than closing the list (see :func:`decision_tokens`)."""
    z = logits.astype(np.float64)
    if not np.isfinite(z.max()):
        return 0.0
    p = np.exp(z - z.max())
    more_p, end_p = float(p[go_on].sum()), float(p[close].sum())
    return more_p / (more_p + end_p) if more_p + end_p > 0 else 0.0


def next_call(text: str) -> ToolCall | None:
    """The call a continuation wrote (``, {...}``), or None when it did not write one
    whole (cut off by the budget)."""
    found = calls_in(text.lstrip().removeprefix(","))
    return found[0] if found is not None and len(found) == 1 else None


def repeats(calls: Sequence[ToolCall], call: ToolCall) -> bool:
    """Whether ``call`` repeats one of ``calls`` (same function, same arguments)."""
    return _key(call) in {_key(c) for c in calls}


def decision_tokens(pieces: Sequence[str]) -> tuple[npt.NDArray[np.int64],
                                                    npt.NDArray[np.int64]]:
    """The vocabulary's tokens (``pieces[i]`` is token i's text) that, at the end of a
    call in the open list, go on to another call (open with ``,``) or close the list
    (open with ``]``), leading whitespace aside."""
    go_on = [i for i, p in enumerate(pieces) if p.lstrip().startswith(",")]
    close = [i for i, p in enumerate(pieces) if p.lstrip().startswith("]")]
    return np.array(go_on, dtype=np.int64), np.array(close, dtype=np.int64)


def grammar_text(tools: tuple[ToolSpec, ...]) -> str:
    """GBNF for one more call after a continuation's prefix: ``, <call>``, the call held
    to the tools' schemas as far as llama.cpp's converter reaches (else loose
    arguments)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        call = str(json_schema_to_gbnf(json.dumps(call_schema(tools))))
    except (ValueError, KeyError, TypeError, AssertionError, NotImplementedError):
        call = str(json_schema_to_gbnf(json.dumps(call_schema(tools, loose=True))))
    head = ('root ::= more-ws "," more-ws more-call\n'
            "more-ws ::= [ \\n]?\n")
    return head + _ROOT.sub("more-call ::=", call)


def _as_object(call: ToolCall) -> dict[str, object]:
    try:
        args: object = json.loads(call.arguments)
    except ValueError:
        args = call.arguments
    return {"name": call.name, "arguments": args}


def _key(call: ToolCall) -> tuple[str, str]:
    try:
        args = json.dumps(json.loads(call.arguments), sort_keys=True)
    except ValueError:
        args = call.arguments
    return call.name, args
