"""The grammar that constrains a forced or required tool call.

With ``tool_choice`` naming a function, or ``required``, the answer must be a call, and
the sampler is held to JSON of the shape ``{"name": ..., "arguments": {...}}`` where the
name is the one function (or one of the tools) and the arguments follow that function's
parameter schema, so a forced call always parses and, as far as llama.cpp's schema
converter reaches, validates. Under ``required``, unless ``parallel_tool_calls`` is false,
the answer is a JSON list of one or more such calls, so the model can make several (a
choice naming one function, which is also how structured output is asked for, keeps one
object: SmolLM2 given a list repeated the call). Asked for one object, Qwen2.5-Coder-0.5B
never made a second call on BFCL's parallel items; given a list, it made two on 7 of 15
(``bench/forced_parallel.py``). A parameter schema the converter cannot take falls back
to any JSON object for the arguments (the ``tool_schema`` verifier still checks them).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rung.types import ChatRequest, ToolSpec

log = logging.getLogger("rung.tools")


def forced(request: ChatRequest) -> tuple[ToolSpec, ...]:
    """The tools a call must be one of: the named one, every tool for ``required``, none
    (no constraint) for ``auto``, ``none`` or no choice given."""
    choice = request.tool_choice
    if not request.tools or choice is None or choice.mode in ("auto", "none"):
        return ()
    if choice.mode == "function":
        return tuple(t for t in request.tools if t.name == choice.name)
    return request.tools


def call_schema(tools: tuple[ToolSpec, ...], *, loose: bool = False) -> dict[str, Any]:
    """The JSON schema of one call to one of ``tools``; ``loose``: any object as arguments."""
    shapes = [{"type": "object",
               "properties": {"name": {"const": t.name},
                              "arguments": {"type": "object"} if loose else _params(t)},
               "required": ["name", "arguments"], "additionalProperties": False}
              for t in tools]
    return shapes[0] if len(shapes) == 1 else {"anyOf": shapes}


def _params(tool: ToolSpec) -> dict[str, Any]:
    p = dict(tool.parameters or {})
    p.setdefault("type", "object")
    return p


def several(request: ChatRequest) -> bool:
    """Whether a forced answer may hold several calls: ``required``, and
    ``parallel_tool_calls`` not false."""
    choice = request.tool_choice
    return (choice is not None and choice.mode == "required"
            and request.parallel_tool_calls is not False)


def answer_schema(tools: tuple[ToolSpec, ...], *, several: bool,
                  loose: bool = False) -> dict[str, Any]:
    """The JSON schema of a forced answer: one call, or a list of one or more."""
    one = call_schema(tools, loose=loose)
    return {"type": "array", "items": one, "minItems": 1} if several else one


def grammar_text(tools: tuple[ToolSpec, ...], *, several: bool = False) -> str:
    """GBNF for a forced answer to ``tools`` (the parameter schemas, else loose)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return str(json_schema_to_gbnf(json.dumps(answer_schema(tools, several=several))))
    except (ValueError, KeyError, TypeError, AssertionError, NotImplementedError) as exc:
        log.info("tool schema not convertible to a grammar (%s); arguments left loose", exc)
        return str(json_schema_to_gbnf(json.dumps(answer_schema(tools, several=several,
                                                                loose=True))))
