"""The OpenAI chat-completions wire format, parsed once at the edge.

:func:`parse_chat_request` turns a request body into a validated
:class:`~rung.backends.base.ChatRequest` (or raises RequestError naming the bad
parameter); the ``*_json`` functions build response bodies. Tools and tool calls have
their own module, :mod:`rung.server.tools_wire`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rung.errors import RequestError
from rung.server import tools_wire
from rung.server.tools_wire import ToolCallIn, ToolDef
from rung.types import (
    ChatRequest,
    Chunk,
    ContentPart,
    Message,
    ResponseFormat,
    TokenLogprob,
    ToolCall,
    Usage,
)

_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _TextPart(_Strict):
    type: Literal["text"]
    text: str


class _ImageURL(_Strict):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class _ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: _ImageURL


class _Audio(_Strict):
    data: Annotated[str, Field(min_length=1)]
    format: Literal["wav", "mp3"]


class _AudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: _Audio


class _File(_Strict):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class _FilePart(_Strict):
    type: Literal["file"]
    file: _File


_Part = Annotated[_TextPart | _ImagePart | _AudioPart | _FilePart, Field(discriminator="type")]


class _Message(_Strict):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class _JsonSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class _ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class _StreamOptions(_Strict):
    include_usage: bool = False


class _RungOptions(_Strict):
    """Per-request routing override (``extra_body={"rung": {...}}`` in the SDK)."""

    tier: str | None = None
    thresholds: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    # A registered prompt (rung.prompts): "NAME", "NAME@LABEL" or "NAME@3", and its
    # variables; its messages go in front of the request's own.
    prompt: Annotated[str, Field(min_length=1)] | None = None
    variables: dict[str, str | int | float] | None = None


class ChatCompletionBody(_Strict):
    model: Annotated[str, Field(min_length=1)]
    messages: list[_Message]  # at least one, unless rung.prompt gives them
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: _ResponseFormat | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    user: str | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    tools: Annotated[list[ToolDef], Field(min_length=1)] | None = None
    # Checked by tools_wire.tool_choice_of, which says more than a union's first error.
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    rung: _RungOptions | None = None


_PART_TAGS = {"text", "image_url", "input_audio", "file"}


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "str" or "[" in str(part) \
                or (part in _PART_TAGS and i > 0 and isinstance(loc[i - 1], int)):
            continue  # union branch labels (and a part's tag) pydantic adds to the location
        else:
            out += ("." if out else "") + str(part)
    return out


def _first_error(exc: ValidationError) -> Any:
    """The error to report: the first, unless it is a union's string branch refusing a
    list, where the list branch's deeper error says what is wrong inside it."""
    errs = exc.errors()
    first = errs[0]
    loc = tuple(first["loc"])
    if loc and loc[-1] == "str":
        for e in errs[1:]:
            if len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc) - 1]) == loc[:-1]:
                return e
    return first


def _content(m: _Message) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    return "".join(p.text for p in m.content if isinstance(p, _TextPart))


def _parts(m: _Message) -> tuple[ContentPart, ...]:
    """Every part, when one is not text (an image, audio or a file); else none."""
    if not isinstance(m.content, list) or all(isinstance(p, _TextPart) for p in m.content):
        return ()
    return tuple(ContentPart("text", text=p.text) if isinstance(p, _TextPart) else
                 ContentPart(p.type, body=orjson.dumps(
                     getattr(p, p.type).model_dump(exclude_none=True)).decode())
                 for p in m.content)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; RequestError (invalid_json) if not."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"We could not parse the JSON body of your request: {exc}",
                           code="invalid_json") from exc
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.", code="invalid_json")
    return data


def validated(model: type[_M], data: dict[str, Any]) -> _M:
    """``data`` as ``model``; the first problem as a RequestError naming its param."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = _first_error(exc)
        param = _param(tuple(err["loc"])) or "body"
        if err["type"] == "extra_forbidden":
            raise RequestError(f"Unrecognized request argument supplied: {param}",
                               param=param, code="unknown_parameter") from exc
        raise RequestError(f"Invalid value for '{param}': {err['msg']}", param=param,
                           code="invalid_value") from exc


def parse_chat_request(raw: bytes, *, max_messages: int) -> tuple[ChatCompletionBody, ChatRequest]:
    """Parse and validate a request body. Raises RequestError with ``param`` set."""
    data = json_object(raw)
    tools_wire.refuse_legacy(data)
    body = validated(ChatCompletionBody, data)
    if not body.messages and (body.rung is None or body.rung.prompt is None):
        raise RequestError("Invalid value for 'messages': List should have at least 1 item "
                           "after validation, not 0", param="messages", code="invalid_value")
    if len(body.messages) > max_messages:
        raise RequestError(f"Too many messages: {len(body.messages)} > {max_messages}.",
                           param="messages", code="too_many_messages")
    if body.top_logprobs and not body.logprobs:
        raise RequestError("top_logprobs requires logprobs to be true.",
                           param="top_logprobs", code="invalid_value")
    rf = ResponseFormat()
    if body.response_format is not None:
        if body.response_format.type == "json_schema":
            if body.response_format.json_schema is None:
                raise RequestError("response_format json_schema needs a json_schema object.",
                                   param="response_format.json_schema", code="invalid_value")
            js = body.response_format.json_schema
            rf = ResponseFormat("json_schema", js.schema_, name=js.name, strict=js.strict)
        else:
            rf = ResponseFormat(body.response_format.type)
    tools = tools_wire.tools_of(body.tools)
    tool_choice = tools_wire.tool_choice_of(body.tool_choice, tools)
    tools_wire.check_parallel(body.parallel_tool_calls, tools)
    messages = tuple(
        Message("system" if m.role == "developer" else m.role, _content(m),
                tool_calls=tools_wire.calls_of(m.tool_calls), tool_call_id=m.tool_call_id,
                name=m.name, parts=_parts(m))
        for m in body.messages
    )
    tools_wire.check_turns(messages)
    max_tokens = body.max_completion_tokens or body.max_tokens
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    req = ChatRequest(
        messages=messages,
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=stop,
        seed=body.seed,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs or 0,
        response_format=rf,
        stream=bool(body.stream),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=body.parallel_tool_calls,
        reasoning_effort=body.reasoning_effort,
    )
    return body, req


def _logprobs_json(lps: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token.encode("utf-8")),
                "top_logprobs": [
                    {"token": x.token, "logprob": x.logprob,
                     "bytes": list(x.token.encode("utf-8"))}
                    for x in t.top
                ],
            }
            for t in lps
        ],
        "refusal": None,
    }


def usage_json(u: Usage | None) -> dict[str, Any]:
    """OpenAI's usage; ``prompt_tokens_details.cached_tokens`` when a prefix was reused."""
    u = u or Usage(0, 0)
    out: dict[str, Any] = {"prompt_tokens": u.prompt_tokens,
                           "completion_tokens": u.completion_tokens,
                           "total_tokens": u.total_tokens}
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    return out


def completion_json(
    *, rid: str, model: str, text: str, logprobs: list[TokenLogprob] | None,
    finish_reason: str | None, usage: Usage | None, rung: dict[str, Any],
    tool_calls: tuple[ToolCall, ...] = (),
) -> bytes:
    """A ``chat.completion`` body; with ``tool_calls`` and no text, content is null."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tools_wire.tool_calls_json(tool_calls)
        if not text:
            message["content"] = None
    return orjson.dumps({
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": _logprobs_json(logprobs) if logprobs is not None else None,
            "finish_reason": finish_reason or "stop",
        }],
        "usage": usage_json(usage),
        "system_fingerprint": None,
        "rung": rung,
    })


def chunk_event(
    *, rid: str, model: str, created: int, chunk: Chunk | None = None, role: bool = False,
    with_logprobs: bool = False,
) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta = {"role": "assistant", "content": ""}
    elif chunk is not None:
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = tools_wire.tool_call_deltas_json(chunk.tool_calls)
    choice: dict[str, Any] = {
        "index": 0,
        "delta": delta,
        "logprobs": _logprobs_json(chunk.logprobs)
        if (with_logprobs and chunk is not None and chunk.logprobs) else None,
        "finish_reason": chunk.finish_reason if chunk is not None else None,
    }
    return _event({"id": rid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [choice]})


def usage_event(*, rid: str, model: str, created: int, usage: Usage | None,
                rung: dict[str, Any]) -> bytes:
    return _event({"id": rid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [], "usage": usage_json(usage), "rung": rung})


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"
