"""Verifiers for tool calls: checked before a call is returned for execution.

- ``tool_schema``: every call names a tool that was offered (the forced one, when the
  choice names one), its arguments are a JSON object that validates against the tool's
  parameter schema (required ones present, types and enums right), a ``required`` or
  forced choice got a call at all, and an answer that began writing a call made one: not
  stopped at its length limit in the middle of it (a small model that loops inside an
  argument string leaves only text behind: on the BFCL dev split, 1 of 66 answers of the
  0.5B, and no right one), nor ended with JSON that does not parse (which would otherwise
  go back as text),
  and no call repeats one the conversation already made and got the result of (what the
  local Qwen models do instead of answering from the result: ``bench/tool_result_turn.py``;
  an agent that polls a tool on purpose pays one escalation for it, and the top tier's
  call is returned whatever it is).
- ``tool_crosscheck``: another tier answers the same turn, and a call is accepted only
  when that tier makes the same calls: the same functions, and the same values (after
  light normalisation) of each function's required arguments. Optional arguments are
  left out of the comparison: two right calls often differ in them (a default spelled
  out or not). Restricted to some tools (globs), it is how high-stakes tools are
  confirmed (``[tools] high_stakes``).
- ``tool_logprob``: the model's confidence in what it put in the arguments: the mean
  logprob of the tokens that write argument values, not of the JSON punctuation, the
  function name or the keys (which a template or grammar all but dictates, and which
  would make every call look confident).

An answer without tools offered passes both (they abstain).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from rung.tools.globs import matches
from rung.tools.parse import begins_call
from rung.types import Answer, ChatRequest, TokenLogprob, ToolCall, ToolSpec, Verdict
from rung.verify.base import Generate


class ToolSchemaVerifier:
    name = "tool_schema"
    needs_logprobs = False

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        return self.judge(request, answer.tool_calls, answer.text, answer.finish_reason)

    def judge(self, request: ChatRequest, calls: Sequence[ToolCall], text: str,
              finish_reason: str | None) -> Verdict:
        """The verdict on an answer's calls, text and finish reason (the cascade's check,
        and what ``rung eval run`` records so the cascade replays offline)."""
        if not request.tools:
            return Verdict(self.name, 0.0, True, "no tools offered")
        choice = request.tool_choice
        if not calls and begins_call(text):
            return Verdict(self.name, 1.0, False, "a call cut off at the length limit"
                           if finish_reason == "length" else "a call that does not parse")
        if not calls:
            if choice is not None and choice.mode in ("required", "function"):
                return Verdict(self.name, 1.0, False, f"tool_choice {choice.mode}: no call")
            return Verdict(self.name, 0.0, True, "no call")
        tools = {t.name: t for t in request.tools}
        done = answered_calls(request)
        for call in calls:
            problem = call_problem(call, tools)
            if problem is None and _same_call(call) in done:
                problem = f"{call.name}: repeats a call whose result is in the conversation"
            if problem is None and choice is not None and choice.mode == "function" \
                    and call.name != choice.name:
                problem = f"{call.name}: not the forced {choice.name}"
            if problem is not None:
                return Verdict(self.name, 1.0, False, problem[:160])
        return Verdict(self.name, 0.0, True, f"{len(calls)} valid call(s)")


def answered_calls(request: ChatRequest) -> set[tuple[str, str]]:
    """The calls of earlier turns that a tool turn answered, as :func:`_same_call` keys."""
    results = {m.tool_call_id for m in request.messages if m.role == "tool"}
    return {_same_call(c) for m in request.messages for c in m.tool_calls if c.id in results}


def _same_call(call: ToolCall) -> tuple[str, str]:
    """A call's function and arguments, the arguments' JSON normalised when they parse."""
    args = arguments_of(call)
    return call.name, (json.dumps(args, sort_keys=True) if args is not None
                       else call.arguments)


def arguments_of(call: ToolCall) -> dict[str, Any] | None:
    """A call's arguments when they are a JSON object, else None."""
    try:
        args = json.loads(call.arguments)
    except ValueError:
        return None
    return args if isinstance(args, dict) else None


def call_problem(call: ToolCall, tools: dict[str, ToolSpec]) -> str | None:
    """What is wrong with one call, or None."""
    tool = tools.get(call.name)
    if tool is None:
        return f"{call.name}: no such tool"
    args = arguments_of(call)
    if args is None:
        return f"{call.name}: arguments are not a JSON object"
    if tool.parameters:
        validator = _validator(json.dumps(tool.parameters, sort_keys=True))
        error = next(iter(validator.iter_errors(args)), None) if validator else None
        if error is not None:
            return f"{call.name}: {_failure(error)}"
    return None


@functools.lru_cache(maxsize=256)
def _validator(schema: str) -> Any:
    """A checked validator for a parameter schema (its JSON text), None when the client's
    schema is unusable (nothing to hold a call to). Cached: an agent offers the same tools
    at every step, and checking a schema costs ten times validating a call against it."""
    import jsonschema

    value = json.loads(schema)
    cls = jsonschema.validators.validator_for(value)
    try:
        cls.check_schema(value)
    except jsonschema.SchemaError:
        return None
    return cls(value)


def _failure(exc: Any) -> str:
    """A schema failure named by where and which rule, never by the value (verdicts are
    stored even when ``store.redact`` keeps arguments out of traces): a required
    property's name is the schema's, so it is said; a wrong value is not."""
    where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
    if exc.validator == "required":
        return f"{where}: {exc.message}"
    rule = f"{exc.validator} {json.dumps(exc.validator_value)}" \
        if exc.validator in ("type", "enum", "const") else str(exc.validator)
    return f"{where}: fails {rule}"[:160]


class ToolLogprobVerifier:
    """Escalate a call whose argument values' mean token logprob is below ``min_logprob``."""

    name = "tool_logprob"
    needs_logprobs = True

    def __init__(self, *, min_logprob: float) -> None:
        self.min_logprob = min_logprob

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        if not request.tools or not answer.tool_calls:
            return Verdict(self.name, 0.0, True, "no call")
        values = [t.logprob for t in value_tokens(answer.logprobs)]
        if not values:
            return Verdict(self.name, 0.5, True, "no argument tokens: abstain")
        mean = sum(values) / len(values)
        return Verdict(self.name, 1.0 - math.exp(mean), mean >= self.min_logprob,
                       f"mean argument logprob {mean:.3f} over {len(values)} tokens")


_KEY = re.compile(r'"(?:[^"\\]|\\.)*"\s*:')
_ARGUMENTS = re.compile(r'"(?:arguments|parameters)"\s*:')


def value_tokens(tokens: list[TokenLogprob]) -> list[TokenLogprob]:
    """The tokens that write argument values: after an ``"arguments":`` key, with a
    letter or digit in them, outside the keys. Text that is no JSON call (an upstream's
    answer, whose tokens are not the call's) gives none."""
    text = "".join(t.token for t in tokens)
    spans = [(m.end(), _end_of_value(text, m.end())) for m in _ARGUMENTS.finditer(text)]
    if not spans:
        return []
    keys = [(m.start(), m.end()) for a, b in spans for m in _KEY.finditer(text, a, b)]
    out, at = [], 0
    for t in tokens:
        start, at = at, at + len(t.token)
        middle = (start + at) / 2
        if (any(c.isalnum() for c in t.token) and any(a <= middle < b for a, b in spans)
                and not any(a <= middle < b for a, b in keys)):
            out.append(t)
    return out


def _end_of_value(text: str, start: int) -> int:
    """Where the JSON value that begins at ``start`` ends (the text's end if it does not)."""
    try:
        _, end = json.JSONDecoder().raw_decode(text, _skip_space(text, start))
        return int(end)
    except ValueError:
        return len(text)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at



class ToolCrossCheckVerifier:
    name = "tool_crosscheck"
    needs_logprobs = False

    def __init__(self, *, tier: str, tools: tuple[str, ...] = ("*",)) -> None:
        self.tier, self.tools = tier, tools

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        calls = answer.tool_calls
        if not calls or not any(matches(c.name, self.tools) for c in calls):
            return Verdict(self.name, 0.0, True, "no call to cross-check")
        other = await generate(self.tier, request)
        specs = {t.name: t for t in request.tools}
        mine = sorted(call_key(c, specs) for c in calls)
        theirs = sorted(call_key(c, specs) for c in other.tool_calls)
        if mine == theirs:
            return Verdict(self.name, 0.0, True, f"{self.tier} makes the same call(s)")
        names = ", ".join(c.name for c in other.tool_calls) or "no call"
        return Verdict(self.name, 1.0, False, f"{self.tier} differs: {names}"[:160])


def call_key(call: ToolCall, specs: dict[str, ToolSpec]) -> str:
    """What two calls must share to agree: the function and its required arguments'
    normalised values (all arguments when the schema names none required)."""
    args = arguments_of(call)
    if args is None:
        return f"{call.name}:{call.arguments}"
    spec = specs.get(call.name)
    required = (spec.parameters or {}).get("required") if spec else None
    keys = sorted(required) if isinstance(required, list) and required else sorted(args)
    return call.name + ":" + json.dumps({k: _norm(args.get(k)) for k in keys}, sort_keys=True)


def _norm(value: Any) -> Any:
    """Values that mean the same compare equal: case and surrounding space of strings,
    1 and 1.0, and the same inside lists and objects."""
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    return value
