"""OpenAI's Responses API on the wire, parsed once at the edge.

A ``POST /v1/responses`` body becomes the same :class:`~rung.types.ChatRequest` that
chat completions make (so routing, the cascade, verifiers, tools, traces, keys and
limits are the chat path's own): ``instructions`` is the first system turn, ``input``
items become turns (``function_call`` items an assistant turn's calls,
``function_call_output`` items tool turns), ``text.format`` the response format and
function ``tools`` the chat tools. What rung does not do (hosted tools such as web
search, background mode, conversations, stored prompts) is a 400 naming the parameter.

The ``*_json`` functions build the response object and the typed stream events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from rung.errors import RequestError
from rung.server import tools_wire
from rung.server.wire import json_object, usage_json, validated
from rung.types import (
    ChatRequest,
    ContentPart,
    Message,
    ResponseFormat,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

MAX_METADATA = 16
# Tool types of OpenAI's that run on OpenAI's side: rung has none of them.
HOSTED_TOOLS = ("web_search", "web_search_preview", "file_search", "computer_use_preview",
                "computer", "code_interpreter", "image_generation", "mcp", "local_shell",
                "shell", "apply_patch", "custom", "tool_search")
LOGPROBS_INCLUDE = "message.output_text.logprobs"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Format(_Strict):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class _Text(_Strict):
    format: _Format | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class _Reasoning(_Strict):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class _RungOptions(_Strict):
    tier: str | None = None
    thresholds: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    prompt: Annotated[str, Field(min_length=1)] | None = None  # as chat's (rung.prompts)
    variables: dict[str, str | int | float] | None = None


class ResponsesBody(_Strict):
    """A ``POST /v1/responses`` body: every field OpenAI documents is known here, so an
    unknown one is a 400; the ones rung cannot honour are refused in :func:`parse`."""

    model: Annotated[str, Field(min_length=1)]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    text: _Text | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    reasoning: _Reasoning | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    # Known, and refused with a 400 that says so when set (see _UNSUPPORTED).
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    rung: _RungOptions | None = None


_UNSUPPORTED = {
    "background": "background mode is not supported: rung answers while the request is "
                  "open (use stream=true for long answers)",
    "conversation": "conversations are not supported: chain responses with "
                    "previous_response_id",
    "prompt": "stored OpenAI prompts are not supported",
    "context_management": "context_management is not supported",
}


@dataclass(frozen=True, slots=True)
class ParsedResponses:
    """A parsed body: the validated fields, the request's own turns (``input``, without
    ``instructions`` and without any earlier response's turns), and its tools."""

    body: ResponsesBody
    turns: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    tool_choice: ToolChoice | None
    response_format: ResponseFormat

    @property
    def store(self) -> bool:
        return self.body.store is not False

    @property
    def stream(self) -> bool:
        return bool(self.body.stream)

    @property
    def with_logprobs(self) -> bool:
        return LOGPROBS_INCLUDE in (self.body.include or ()) or bool(self.body.top_logprobs)


def parse(raw: bytes) -> ParsedResponses:
    """Validate a body (the earlier turns of ``previous_response_id`` come later, from
    the store: :func:`chat_request`)."""
    data = json_object(raw)
    body = validated(ResponsesBody, data)
    for name, why in _UNSUPPORTED.items():
        value = getattr(body, name)
        if value not in (None, False):
            raise RequestError(f"Unsupported parameter: '{name}': {why}.", param=name,
                               code="unsupported_parameter")
    if body.metadata is not None and len(body.metadata) > MAX_METADATA:
        raise RequestError(f"'metadata' may have at most {MAX_METADATA} keys.",
                           param="metadata", code="invalid_value")
    prompted = body.rung is not None and body.rung.prompt is not None
    # A registered prompt may carry every turn.
    if (body.input is None or body.input == "" or body.input == []) and not prompted:
        raise RequestError("Missing required parameter: 'input'.", param="input",
                           code="missing_required_parameter")
    turns = input_turns(body.input) if body.input else ()
    tools = tools_of(body.tools)
    return ParsedResponses(body=body, turns=turns, tools=tools,
                           tool_choice=tool_choice_of(body.tool_choice, tools),
                           response_format=format_of(body.text))


def chat_request(p: ParsedResponses, history: Sequence[Message], *,
                 max_messages: int) -> ChatRequest:
    """The chat request: instructions, then ``history`` (the turns of the response this
    one continues), then this request's own turns."""
    body = p.body
    head = (Message("system", body.instructions),) if body.instructions else ()
    messages = (*head, *history, *p.turns)
    if len(messages) > max_messages:
        raise RequestError(f"Too many input items: {len(messages)} > {max_messages}.",
                           param="input", code="too_many_messages")
    tools_wire.check_turns(messages)
    return ChatRequest(
        messages=messages, max_tokens=body.max_output_tokens, temperature=body.temperature,
        top_p=body.top_p, logprobs=p.with_logprobs, top_logprobs=body.top_logprobs or 0,
        response_format=p.response_format, stream=p.stream, tools=p.tools,
        tool_choice=p.tool_choice,
        parallel_tool_calls=body.parallel_tool_calls if p.tools else None,
        reasoning_effort=body.reasoning.effort if body.reasoning else None)


# -- input items ----------------------------------------------------------------------

_TEXT_PARTS = {"input_text", "output_text", "text", "summary_text"}
_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _media_part(part: dict[str, Any], param: str) -> ContentPart:
    """An ``input_image``, ``input_audio`` or ``input_file`` part as the chat part an
    upstream tier is sent."""
    kind = part["type"]
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise RequestError("An input_image needs an 'image_url' (a URL or a data: URL; "
                               "file ids are not supported).", param=f"{param}.image_url",
                               code="invalid_value")
        body: dict[str, Any] = {"url": url}
        if part.get("detail") in ("auto", "low", "high"):
            body["detail"] = part["detail"]
        return ContentPart("image_url", body=orjson.dumps(body).decode())
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str) \
                or audio.get("format") not in ("wav", "mp3"):
            raise RequestError("An input_audio needs 'input_audio': {'data': <base64>, "
                               "'format': 'wav' or 'mp3'}.", param=f"{param}.input_audio",
                               code="invalid_value")
        return ContentPart("input_audio", body=orjson.dumps(
            {"data": audio["data"], "format": audio["format"]}).decode())
    file = {k: part[k] for k in ("file_data", "file_id", "filename")
            if isinstance(part.get(k), str)}
    if "file_data" not in file and "file_id" not in file:
        raise RequestError("An input_file needs 'file_data' (or a 'file_id' the upstream "
                           "knows).", param=param, code="invalid_value")
    return ContentPart("file", body=orjson.dumps(file).decode())


def _content_of(content: Any, param: str) -> tuple[str, tuple[ContentPart, ...]]:
    """A message's text, and every part when one is an image, audio or a file."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise RequestError(f"Invalid value for '{param}': expected a string or a list of "
                           "content parts.", param=param, code="invalid_value")
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            parts.append(ContentPart("text", text=part["text"]))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.append(ContentPart("text", text=part["refusal"]))
        elif kind in {"input_image", "input_file", "input_audio"}:
            parts.append(_media_part(part, f"{param}[{j}]"))
        else:
            raise RequestError(f"Invalid content part at '{param}[{j}]': expected "
                               "{'type': 'input_text', 'text': ...}.",
                               param=f"{param}[{j}]", code="invalid_value")
    text = "".join(p.text for p in parts if p.type == "text")
    return text, tuple(parts) if any(p.type != "text" for p in parts) else ()


def _text_of(content: Any, param: str) -> str:
    text, parts = _content_of(content, param)
    if parts:
        raise RequestError(f"'{param}' may hold text only.", param=param,
                           code="unsupported_content")
    return text


def _str_field(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise RequestError(f"Missing or invalid '{param}.{name}': expected a non-empty "
                           "string.", param=f"{param}.{name}", code="invalid_value")
    return value


def input_turns(value: str | list[dict[str, Any]]) -> tuple[Message, ...]:
    """``input`` as turns. Consecutive ``function_call`` items (and an assistant message
    right before them) make one assistant turn with several calls, as in chat."""
    if isinstance(value, str):
        return (Message("user", value),)
    turns: list[Message] = []
    calls_open = False  # the last turn is an assistant turn that calls may join
    for i, item in enumerate(value):
        param = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = _ROLES.get(item.get("role", ""))
            if role is None:
                raise RequestError(f"Invalid value for '{param}.role': expected 'user', "
                                   "'assistant', 'system' or 'developer'.",
                                   param=f"{param}.role", code="invalid_value")
            text, parts = _content_of(item.get("content"), f"{param}.content")
            turns.append(Message(role, text, parts=parts))
            calls_open = role == "assistant"
        elif kind == "function_call":
            args = item.get("arguments")
            call = ToolCall(_str_field(item, "call_id", param), _str_field(item, "name", param),
                            args if isinstance(args, str) else "")
            if calls_open:
                last = turns[-1]
                turns[-1] = Message("assistant", last.content,
                                    tool_calls=(*last.tool_calls, call))
            else:
                turns.append(Message("assistant", "", tool_calls=(call,)))
            calls_open = True
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text_of(output, f"{param}.output")
            turns.append(Message("tool", text,
                                 tool_call_id=_str_field(item, "call_id", param)))
            calls_open = False
        elif kind == "reasoning":
            continue  # a reasoning model's summary, echoed back: rung's models have none
        elif kind == "item_reference":
            raise RequestError("Item references are not supported: send the item itself, "
                               "or use previous_response_id.", param=param,
                               code="unsupported_parameter")
        else:
            raise RequestError(f"Input items of type '{kind}' are not supported (rung runs "
                               "no hosted tools).", param=f"{param}.type",
                               code="unsupported_parameter")
    if not turns:
        raise RequestError("'input' has no message.", param="input", code="invalid_value")
    return tuple(turns)


# -- tools and formats ----------------------------------------------------------------

class _FunctionTool(_Strict):
    type: Literal["function"]
    name: Annotated[str, Field(pattern=tools_wire.TOOL_NAME)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


def tools_of(tools: list[dict[str, Any]] | None) -> tuple[ToolSpec, ...]:
    """Function tools (``{"type": "function", "name", "parameters", ...}``, flat); a
    hosted tool is a 400 naming its type."""
    defs: list[tools_wire.ToolDef] = []
    for i, t in enumerate(tools or ()):
        kind = t.get("type")
        if kind != "function":
            what = f"'{kind}'" if isinstance(kind, str) else "without a type"
            hosted = " (a tool OpenAI runs on its side)" if kind in HOSTED_TOOLS else ""
            raise RequestError(f"Tools of type {what} are not supported{hosted}: rung "
                               "offers function tools only.", param=f"tools[{i}].type",
                               code="unsupported_parameter")
        try:
            f = validated(_FunctionTool, t)
        except RequestError as exc:
            param = f"tools[{i}].{exc.param}"
            raise RequestError(exc.message.replace(f"'{exc.param}'", f"'{param}'"),
                               param=param, code=exc.code) from exc
        defs.append(tools_wire.ToolDef.model_validate(
            {"type": "function", "function": f.model_dump(exclude={"type"})}))
    return tools_wire.tools_of(defs)


def tool_choice_of(value: str | dict[str, Any] | None,
                   tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    """A mode, or ``{"type": "function", "name": ...}`` (the flat Responses shape)."""
    if isinstance(value, dict):
        if value.get("type") != "function" or not isinstance(value.get("name"), str) \
                or set(value) != {"type", "name"}:
            raise RequestError("Invalid value for 'tool_choice': expected 'none', 'auto', "
                               "'required' or {\"type\": \"function\", \"name\": \"...\"}.",
                               param="tool_choice", code="invalid_value")
        value = {"type": "function", "function": {"name": value["name"]}}
    return tools_wire.tool_choice_of(value, tools)


def format_of(text: _Text | None) -> ResponseFormat:
    f = text.format if text is not None else None
    if f is None or f.type == "text":
        return ResponseFormat()
    if f.type == "json_object":
        return ResponseFormat("json_object")
    if f.schema_ is None:
        raise RequestError("text.format of type 'json_schema' needs a 'schema'.",
                           param="text.format.schema", code="invalid_value")
    return ResponseFormat("json_schema", f.schema_, name=f.name, strict=f.strict)


# -- the response object --------------------------------------------------------------

def usage_out(u: Usage | None) -> dict[str, Any]:
    """The Responses API's usage names (input/output, not prompt/completion)."""
    c = usage_json(u)
    return {"input_tokens": c["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": u.cached_tokens if u else 0},
            "output_tokens": c["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": c["total_tokens"]}


def logprobs_out(lps: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    return [{"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode()),
             "top_logprobs": [{"token": x.token, "logprob": x.logprob,
                               "bytes": list(x.token.encode())} for x in t.top]}
            for t in lps]


def text_part(text: str, lps: Sequence[TokenLogprob] | None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
    if lps is not None:
        part["logprobs"] = logprobs_out(lps)
    return part


def message_item(item_id: str, text: str, *, status: str = "completed",
                 lps: Sequence[TokenLogprob] | None = None) -> dict[str, Any]:
    content = [text_part(text, lps)] if status == "completed" else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content}


def call_item(item_id: str, call: ToolCall, *, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call.id,
            "name": call.name, "arguments": call.arguments if status == "completed" else ""}


def tools_out(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function", "name": t.name, "description": t.description,
             "parameters": t.parameters, "strict": t.strict} for t in tools]


def tool_choice_out(choice: ToolChoice | None) -> str | dict[str, Any]:
    if choice is None:
        return "auto"
    if choice.mode == "function":
        return {"type": "function", "name": choice.name}
    return choice.mode


def format_out(rf: ResponseFormat) -> dict[str, Any]:
    if rf.type != "json_schema":
        return {"type": rf.type}
    return {"type": "json_schema", "name": rf.name or "response", "schema": rf.schema,
            "strict": rf.strict}


def response_json(p: ParsedResponses, *, rid: str, created: float, model: str,
                  status: str, output: list[dict[str, Any]], usage: Usage | None,
                  rung: dict[str, Any] | None, stored: bool,
                  error: dict[str, Any] | None = None,
                  incomplete: str | None = None) -> dict[str, Any]:
    """A ``response`` object (its fields in OpenAI's order)."""
    b = p.body
    return {
        "id": rid, "object": "response", "created_at": int(created), "status": status,
        "background": False, "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": b.instructions, "max_output_tokens": b.max_output_tokens,
        "max_tool_calls": b.max_tool_calls, "model": model, "output": output,
        "parallel_tool_calls": b.parallel_tool_calls is not False,
        "previous_response_id": b.previous_response_id,
        "reasoning": {"effort": b.reasoning.effort if b.reasoning else None,
                      "summary": b.reasoning.summary if b.reasoning else None},
        "service_tier": "default", "store": stored,
        "temperature": b.temperature, "text": {"format": format_out(p.response_format)},
        "tool_choice": tool_choice_out(p.tool_choice), "tools": tools_out(p.tools),
        "top_logprobs": b.top_logprobs, "top_p": b.top_p,
        "truncation": b.truncation or "disabled",
        "usage": usage_out(usage) if status != "in_progress" else None,
        "user": b.user, "metadata": b.metadata or {},
        "rung": rung,
    }


def input_items_json(turns: Sequence[Message], *, ids: Sequence[str],
                     order: Literal["asc", "desc"] = "desc") -> dict[str, Any]:
    """``GET /v1/responses/{id}/input_items``: the turns a response answered, as items
    (an assistant turn's calls become function_call items)."""
    items: list[dict[str, Any]] = []
    for m, item_id in zip(turns, ids, strict=True):
        if m.role == "tool":
            items.append({"id": item_id, "type": "function_call_output", "status": "completed",
                          "call_id": m.tool_call_id, "output": m.content})
            continue
        if m.content or not m.tool_calls:
            kind = "output_text" if m.role == "assistant" else "input_text"
            items.append({"id": item_id, "type": "message", "status": "completed",
                          "role": m.role, "content": [{"type": kind, "text": m.content}]})
        items += [{**call_item(f"{item_id}_{j}", c)} for j, c in enumerate(m.tool_calls)]
    if order == "desc":
        items.reverse()
    return {"object": "list", "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None, "has_more": False}

