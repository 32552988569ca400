"""Tools and tool turns in a local model's prompt.

A chat template that knows tools (Qwen2.5's GGUF template: the tools in a ``<tools>``
block of the system turn, calls as ``<tool_call>`` blocks, results as
``<tool_response>`` blocks) is given them in OpenAI's shape and renders them itself.
A template that does not (SmolLM2's) gets the same instructions written out in the system
turn, earlier calls written into the assistant turns as ``<tool_call>`` blocks and
results as user turns holding ``<tool_response>`` blocks: the form the parser
(:mod:`rung.tools.parse`) reads back, whichever template wrote the prompt.
"""

from __future__ import annotations

import json
from typing import Any

from rung.types import ChatRequest, Message, ToolCall, ToolSpec


def knows_tools(template: str) -> bool:
    """Whether a Jinja chat template renders a ``tools`` list."""
    return "tools" in template


def offered(request: ChatRequest) -> bool:
    """Whether the model may call a tool on this turn (tools given, choice not none)."""
    return bool(request.tools) and (request.tool_choice is None
                                    or request.tool_choice.mode != "none")


def template_inputs(request: ChatRequest, *, native: bool, after_result: str | None = None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """``(messages, tools)`` for the chat template: tools is None when none are offered
    or the template does not know them (they are then in the system turn).

    ``after_result``: a user turn added when the conversation ends with tool results and
    the model may choose between a call and text (``auto``), before it answers.
    """
    tools = [_tool_json(t) for t in request.tools] if offered(request) else None
    if native:
        turns = [_native_turn(m) for m in request.messages]
    else:
        turns = [_written_turn(m) for m in request.messages]
        if tools:
            head = _instructions(tools, request)
            if turns and turns[0]["role"] == "system":
                turns[0] = {"role": "system", "content": turns[0]["content"] + "\n\n" + head}
            else:
                turns.insert(0, {"role": "system", "content": head})
    if after_result and _answers_results(request):
        turns.append({"role": "user", "content": after_result})
    return turns, tools if native else None


def _answers_results(request: ChatRequest) -> bool:
    """Whether this turn follows tool results with the choice between a call and text."""
    choice = request.tool_choice
    return (offered(request) and (choice is None or choice.mode == "auto")
            and bool(request.messages) and request.messages[-1].role == "tool")


def _tool_json(tool: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name,
                          "parameters": tool.parameters or {"type": "object", "properties": {}}}
    if tool.description:
        fn["description"] = tool.description
    return {"type": "function", "function": fn}


def _arguments(call: ToolCall) -> Any:
    """A call's arguments as a value (templates write them with ``tojson``); text that
    does not parse stays text."""
    try:
        return json.loads(call.arguments)
    except ValueError:
        return call.arguments


def _native_turn(m: Message) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        turn["tool_calls"] = [{"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": _arguments(c)}}
                              for c in m.tool_calls]
    if m.tool_call_id is not None:
        turn["tool_call_id"] = m.tool_call_id
    return turn


def call_block(call: ToolCall) -> str:
    return ("<tool_call>\n" + json.dumps({"name": call.name, "arguments": _arguments(call)},
                                         ensure_ascii=False) + "\n</tool_call>")


def _written_turn(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"}
    if m.tool_calls:
        parts = ([m.content] if m.content else []) + [call_block(c) for c in m.tool_calls]
        return {"role": "assistant", "content": "\n".join(parts)}
    return {"role": m.role, "content": m.content}


def _instructions(tools: list[dict[str, Any]], request: ChatRequest) -> str:
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    choice = request.tool_choice
    if choice is not None and choice.mode == "function":
        must = f"You must call the function {choice.name}."
    elif choice is not None and choice.mode == "required":
        must = "You must call one or more of these functions."
    else:
        must = ("Call a function only when one fits the request; otherwise answer in "
                "plain text.")
    return ("# Tools\n\nYou may call one or more functions to assist with the user query."
            f"\n\nYou are provided with function signatures within <tools></tools> XML tags:"
            f"\n<tools>\n{listed}\n</tools>\n\n{must} For each function call, return a "
            "json object with function name and arguments within <tool_call></tool_call> "
            "XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call>")
