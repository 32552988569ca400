"""Tool calling on the OpenAI wire: ``tools``, ``tool_choice``, ``parallel_tool_calls``
and tool turns in; ``tool_calls`` out (whole in a completion, in pieces in a stream).

:mod:`rung.server.wire` validates the shapes with the models here, then calls the
``*_of``/``check_*`` functions for what a shape cannot say (a schema that is not an
object's, a ``tool_choice`` naming no tool, a tool turn answering no call), each
raising RequestError naming the parameter. The legacy ``functions``/``function_call``
parameters are refused with a 400 that names their replacement, not mapped: one shape
in, one shape in traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rung.auth.keys import ApiKey
from rung.config import ToolsConfig
from rung.errors import RequestError
from rung.types import Message, ToolCall, ToolCallDelta, ToolChoice, ToolSpec

TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
_LEGACY = {"functions": "tools", "function_call": "tool_choice"}
_MODES = {"none": ToolChoice("none"), "auto": ToolChoice("auto"),
          "required": ToolChoice("required")}


class _FunctionDef(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=TOOL_NAME)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(BaseModel):
    """One entry of ``tools``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    type: Literal["function"]
    function: _FunctionDef


class _CalledFunction(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    name: str
    arguments: str


class ToolCallIn(BaseModel):
    """A call in an assistant turn the client sends back (extra keys ignored, like the
    message's own: the SDK echoes whatever its response object had)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    id: Annotated[str, Field(min_length=1)]
    type: Literal["function"] = "function"
    function: _CalledFunction


def refuse_legacy(data: dict[str, Any]) -> None:
    """A 400 for the deprecated ``functions``/``function_call`` request parameters."""
    for old, new in _LEGACY.items():
        if old in data:
            raise RequestError(f"'{old}' is deprecated and not supported: use '{new}'.",
                               param=old, code="unsupported_parameter")


def check_allowed(policy: ToolsConfig, tools: Sequence[ToolSpec],
                  *, key: ApiKey | None = None) -> None:
    """A 400 naming the first offered tool that the operator's ``[tools]`` allow/deny
    lists or the calling key's own lists refuse: a tool must pass both, and a deny in
    either wins (the request never reaches a model, so no call to it can be made)."""
    for i, t in enumerate(tools):
        if not policy.allows(t.name):
            raise RequestError(f"Tool '{t.name}' is not allowed on this gateway.",
                               param=f"tools[{i}]", code="tool_not_allowed")
        if key is not None and not key.allows_tool(t.name):
            raise RequestError(f"Tool '{t.name}' is not allowed for this API key.",
                               param=f"tools[{i}]", code="tool_not_allowed")


def tools_of(tools: Sequence[ToolDef] | None) -> tuple[ToolSpec, ...]:
    """The typed tools; each ``parameters`` must be a JSON schema of an object."""
    out: list[ToolSpec] = []
    seen: set[str] = set()
    for i, t in enumerate(tools or ()):
        f = t.function
        params = f.parameters
        if params is not None and params.get("type", "object") != "object":
            raise RequestError(
                f"Invalid schema for function '{f.name}': parameters must be a JSON schema "
                f"of type 'object', got type {params.get('type')!r}.",
                param=f"tools[{i}].function.parameters", code="invalid_value")
        if f.name in seen:
            raise RequestError(f"Duplicate tool name '{f.name}'.",
                               param=f"tools[{i}].function.name", code="invalid_value")
        seen.add(f.name)
        out.append(ToolSpec(f.name, f.description, params, f.strict))
    return tuple(out)


def tool_choice_of(value: str | dict[str, Any] | None,
                   tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    """``tool_choice``: a mode, or ``{"type": "function", "function": {"name": ...}}``
    naming one of ``tools``."""
    if value is None:
        return None
    if not tools:
        raise RequestError("'tool_choice' is only allowed when 'tools' are specified.",
                           param="tool_choice", code="invalid_value")
    if isinstance(value, str):
        if value not in _MODES:
            raise RequestError(f"Invalid value for 'tool_choice': {value!r}; expected "
                               "'none', 'auto', 'required' or a named function.",
                               param="tool_choice", code="invalid_value")
        return _MODES[value]
    function = value.get("function")
    name = function.get("name") if isinstance(function, dict) and set(function) == {"name"} \
        else None
    if value.get("type") != "function" or set(value) != {"type", "function"} \
            or not isinstance(name, str):
        raise RequestError("Invalid value for 'tool_choice': expected "
                           '{"type": "function", "function": {"name": "..."}}.',
                           param="tool_choice", code="invalid_value")
    if name not in {t.name for t in tools}:
        raise RequestError(f"Invalid value for 'tool_choice': no tool is named '{name}'.",
                           param="tool_choice", code="invalid_value")
    return ToolChoice("function", name)


def check_parallel(value: bool | None, tools: tuple[ToolSpec, ...]) -> None:
    if value is not None and not tools:
        raise RequestError("'parallel_tool_calls' is only allowed when 'tools' are specified.",
                           param="parallel_tool_calls", code="invalid_value")


def calls_of(calls: Sequence[ToolCallIn] | None) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in calls or ())


def check_turns(messages: Sequence[Message]) -> None:
    """Calls only in assistant turns; each tool turn answers a call made before it."""
    called: set[str] = set()
    for i, m in enumerate(messages):
        if m.tool_calls and m.role != "assistant":
            raise RequestError(f"Only assistant messages may carry 'tool_calls', not "
                               f"'{m.role}'.", param=f"messages[{i}].tool_calls",
                               code="invalid_value")
        called.update(c.id for c in m.tool_calls)
        if m.role != "tool":
            if m.tool_call_id is not None:
                raise RequestError("Only tool messages may carry 'tool_call_id'.",
                                   param=f"messages[{i}].tool_call_id", code="invalid_value")
            continue
        if m.tool_call_id is None:
            raise RequestError("A tool message needs the 'tool_call_id' it answers.",
                               param=f"messages[{i}].tool_call_id", code="invalid_value")
        if m.tool_call_id not in called:
            raise RequestError(
                f"Invalid 'tool_call_id' {m.tool_call_id!r}: messages with role 'tool' must "
                "answer a tool call of an earlier assistant message.",
                param=f"messages[{i}].tool_call_id", code="invalid_value")


def tool_calls_json(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """A completion's ``message.tool_calls``."""
    return [c.as_dict() for c in calls]


def tool_call_deltas_json(deltas: Sequence[ToolCallDelta]) -> list[dict[str, Any]]:
    """A stream delta's ``tool_calls``: id, type and name on a call's first piece only,
    so that the SDK's accumulator concatenates nothing but the arguments."""
    out: list[dict[str, Any]] = []
    for d in deltas:
        function: dict[str, Any] = {"arguments": d.arguments}
        item: dict[str, Any] = {"index": d.index}
        if d.id is not None:
            item["id"], item["type"] = d.id, "function"
        if d.name is not None:
            function = {"name": d.name, **function}
        item["function"] = function
        out.append(item)
    return out
