"""A tier served by any OpenAI-compatible HTTP endpoint (vLLM, Ollama, llama.cpp's
server, another rung, a cloud API), over one pooled aiohttp session.

Non-streaming requests are sent non-streaming and come back as one chunk; streaming
requests read the upstream's SSE. Tools, tool choice and tool turns go up as the client
sent them, and the upstream's tool calls come back as :class:`ToolCallDelta` pieces
(a whole call per piece when the upstream did not stream). Library exceptions are wrapped here, where they
enter rung: connection failures become BackendUnavailable, timeouts BackendTimeout,
error statuses UpstreamError (retryable for 429 and 5xx).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from rung.config import OpenAIBackendConfig
from rung.errors import BackendError, BackendTimeout, BackendUnavailable, UpstreamError
from rung.types import (
    ChatRequest,
    Chunk,
    FinishReason,
    Message,
    TokenLogprob,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
    TopLogprob,
    Usage,
)


def _message(m: Message) -> dict[str, Any]:
    d = m.as_dict()
    if m.parts:  # images, audio or files: every part, as the client sent it
        del d["media"]
        d["content"] = [p.as_dict() for p in m.parts]
    elif m.tool_calls and not m.content:
        d["content"] = None  # as OpenAI writes an assistant turn that only calls tools
    return d


def _tool(t: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        function["description"] = t.description
    if t.parameters is not None:
        function["parameters"] = t.parameters
    if t.strict is not None:
        function["strict"] = t.strict
    return {"type": "function", "function": function}


def _tool_choice(c: ToolChoice) -> str | dict[str, Any]:
    if c.mode == "function":
        return {"type": "function", "function": {"name": c.name}}
    return c.mode


def request_body(model: str, req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The upstream wire body for a :class:`ChatRequest`."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m) for m in req.messages],
        "stream": stream,
    }
    # Unset: the upstream server's own default (vLLM's is the model's generation config).
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    if req.seed is not None:
        body["seed"] = req.seed
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs:
            body["top_logprobs"] = req.top_logprobs
    rf = req.response_format
    if rf.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif rf.type == "json_schema":
        js: dict[str, Any] = {"name": rf.name or "schema", "schema": rf.schema}
        if rf.strict is not None:
            js["strict"] = rf.strict
        body["response_format"] = {"type": "json_schema", "json_schema": js}
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.reasoning_effort is not None:  # the tier's strategy is "upstream": relayed
        body["reasoning_effort"] = req.reasoning_effort
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    content = (choice.get("logprobs") or {}).get("content") or ()
    return tuple(
        TokenLogprob(
            token=str(t.get("token", "")), logprob=float(t.get("logprob", 0.0)),
            top=tuple(TopLogprob(token=str(x.get("token", "")), logprob=float(x["logprob"]))
                      for x in (t.get("top_logprobs") or ())),
        )
        for t in content
    )


def _usage(data: dict[str, Any]) -> Usage | None:
    u = data.get("usage")
    if not u:
        return None
    details = u.get("prompt_tokens_details") or {}
    return Usage(prompt_tokens=int(u.get("prompt_tokens", 0)),
                 completion_tokens=int(u.get("completion_tokens", 0)),
                 cached_tokens=int(details.get("cached_tokens") or 0))


def _finish(value: Any) -> FinishReason:
    return "length" if value == "length" else "tool_calls" if value == "tool_calls" else "stop"


def _tool_deltas(calls: Any) -> tuple[ToolCallDelta, ...]:
    """Tool calls of a message (whole) or of a stream delta (pieces); an item without an
    index (a whole message's) takes its position."""
    out: list[ToolCallDelta] = []
    for i, c in enumerate(calls or ()):
        function = c.get("function") or {}
        index = c.get("index")
        out.append(ToolCallDelta(index=int(index) if index is not None else i, id=c.get("id"),
                                 name=function.get("name"),
                                 arguments=function.get("arguments") or ""))
    return tuple(out)


class OpenAIBackend:
    """A :class:`rung.backends.base.Backend` over an OpenAI-compatible endpoint."""

    def __init__(self, name: str, cfg: OpenAIBackendConfig) -> None:
        self.name = name
        self._cfg = cfg
        self._url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            self._headers["Authorization"] = f"Bearer {cfg.api_key}"

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._cfg.max_connections),
                timeout=aiohttp.ClientTimeout(total=self._cfg.timeout_s,
                                              sock_connect=self._cfg.connect_timeout_s),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        try:
            resp = await self._session.post(self._url, data=orjson.dumps(body),
                                            headers=self._headers)
        except TimeoutError as exc:
            raise BackendTimeout(f"tier {self.name}: upstream timed out") from exc
        except aiohttp.ClientConnectionError as exc:
            raise BackendUnavailable(f"tier {self.name}: upstream unreachable: {exc}") from exc
        if resp.status >= 400:
            text = (await resp.read())[:500].decode("utf-8", errors="replace")
            resp.release()
            raise UpstreamError(
                f"tier {self.name}: upstream answered {resp.status}: {text}",
                upstream_status=resp.status, retryable=resp.status == 429 or resp.status >= 500)
        return resp

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if request.max_tokens == 0:
            # OpenAI rejects max_tokens=0 upstream; answer it here consistently.
            yield Chunk(finish_reason="length", usage=Usage(0, 0))
            return
        body = request_body(self._cfg.model, request, stream=request.stream)
        try:
            resp = await self._post(body)
            async with resp:
                async for chunk in self._read_sse(resp):
                    yield chunk
        except TimeoutError as exc:
            raise BackendTimeout(f"tier {self.name}: upstream timed out") from exc
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"tier {self.name}: upstream failed: {exc}") from exc

    async def _read_sse(self, resp: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        ctype = resp.headers.get("Content-Type", "")
        if "text/event-stream" not in ctype:
            # The upstream ignored stream=true: one JSON body.
            data = orjson.loads(await resp.read())
            choice = (data.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            yield Chunk(text=message.get("content") or "", logprobs=_logprobs(choice),
                        tool_calls=_tool_deltas(message.get("tool_calls")),
                        finish_reason=_finish(choice.get("finish_reason")), usage=_usage(data))
            return
        finish: FinishReason | None = None
        usage: Usage | None = None
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise BackendError(f"tier {self.name}: bad SSE payload from upstream") from exc
            usage = _usage(data) or usage
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                lps = _logprobs(choice)
                calls = _tool_deltas(delta.get("tool_calls"))
                if choice.get("finish_reason"):
                    finish = _finish(choice["finish_reason"])
                if text or lps or calls:
                    yield Chunk(text=text, logprobs=lps, tool_calls=calls)
        yield Chunk(finish_reason=finish or "stop", usage=usage)
