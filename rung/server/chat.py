"""``POST /v1/chat/completions``: parse, route, answer, account, trace.

Every request that reaches this handler leaves exactly one trace, errors included, and
the trace is committed before the client gets the end of the answer (the body of a
non-streaming reply; ``[DONE]`` of a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from rung.auth.keys import ApiKey
from rung.cascade import Reply
from rung.errors import PayloadTooLarge, RungError
from rung.server import tools_wire, wire
from rung.server.errors import error_response
from rung.server.prompts import use_prompt
from rung.server.sinks import Finished, Sink
from rung.server.state import ACCESS, CONFIG, GATEWAY, SINKS
from rung.store.trace import NO_TOOLS, ToolUse, Trace, prompt_hash
from rung.types import (
    ChatRequest,
    Chunk,
    Route,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
    assemble_tool_calls,
)

# Request ids: 64 random bits per process, then a counter (a random id per request cost
# a getrandom() syscall each, 5-20 us here); unique across processes and replicas alike.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def new_id(prefix: str) -> str:
    """``prefix`` then 32 hex digits, unique across processes (``chatcmpl-``, ``resp_``)."""
    return f"{prefix}{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _request_id() -> str:
    return new_id("chatcmpl-")


def route_headers(route: Route) -> dict[str, str]:
    return {"x-rung-tier": route.tier or "", "x-rung-route": route.header()}


@dataclass
class Exchange:
    """One request's accounting: its trace, finished once and handed to the sinks."""

    sinks: Sequence[Sink]
    redact: bool
    trace: Trace
    t0: float = field(default_factory=time.perf_counter)
    t_first: float | None = None
    reply: Reply | None = None
    finished: bool = False
    shown: dict[str, Any] | None = None  # the route as the client sees it, once finished
    tools: ToolUse = NO_TOOLS  # what the request offered, once parsed
    prompt: dict[str, Any] | None = None  # the registered prompt used (rung.prompts)

    def client_route(self, route: Route) -> dict[str, Any]:
        """The route as the client's ``rung`` field shows it before the trace is
        finished (the prompt used included)."""
        d = route.as_dict(answers=False)
        if self.prompt is not None:
            d["prompt"] = self.prompt
        return d

    def first_token(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()

    async def refuse(self, exc: RungError) -> web.Response:
        """The error answer for a request refused before its answer began: the trace is
        finished with the error (a store that cannot keep it does not replace the
        error), and the route so far is in the headers."""
        with contextlib.suppress(RungError):
            await self.finish(status=exc.code or "error", error=exc.message)
        resp = error_response(exc)
        if self.reply is not None:
            resp.headers.update(route_headers(self.reply.route))
        return resp

    async def finish(self, *, status: str = "ok", usage: Usage | None = None,
                     text: str | None = None, error: str | None = None,
                     calls: tuple[ToolCall, ...] = ()) -> None:
        """Complete the trace (``calls``: the tool calls the client was sent) and hand it
        to the sinks, once."""
        if self.finished:  # e.g. the client left while [DONE] was being written
            return
        self.finished = True
        t = self.trace
        route = self.reply.route if self.reply is not None else None
        t.status, t.error, t.response = status, error, text
        t.latency_ms = (time.perf_counter() - self.t0) * 1000
        t.ttft_ms = (self.t_first - self.t0) * 1000 if self.t_first is not None else None
        if usage is not None:
            t.input_tokens, t.output_tokens = usage.prompt_tokens, usage.completion_tokens
        if route is not None:
            t.tier, t.cost, t.score = route.tier, route.cost, route.score
            t.escalated = route.escalated
            t.route = route.as_dict(answers=not self.redact)
            # What the client is shown: the same, unless a rejected answer is in it.
            self.shown = t.route if self.redact or all(
                a.answer is None for a in route.attempts) else route.as_dict(answers=False)
        if self.prompt is not None:
            t.route["prompt"] = self.prompt
            if self.shown is not None:
                self.shown["prompt"] = self.prompt
        tools = replace(self.tools, calls=calls) if calls else self.tools
        t.tools = tools.as_dict(arguments=not self.redact)
        if self.redact:
            t.messages, t.response = None, None
        done = Finished(t, route, usage_known=usage is not None)
        for sink in self.sinks:
            await sink(done)


async def admit(request: web.Request, trace: Trace) -> ApiKey | None:
    """The caller's key, counted in against its limits (None where keys are off). The
    trace carries the key from here on, so a refused request's trace says whose it was."""
    access = request.app[ACCESS]
    if access is None:
        return None
    key = access.authenticate(request.headers.get("Authorization"))
    trace.key_id = key.id
    await access.admit(key)
    return key


async def read_body(request: web.Request, limit: int) -> bytes:
    try:
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.") \
            from exc


_INLINE_BYTES = 64 * 1024


def _parse(raw: bytes, t: Trace, *,
           max_messages: int) -> tuple[wire.ChatCompletionBody, ChatRequest]:
    """Parse the body, and record in the trace what the client asked."""
    body, req = wire.parse_chat_request(raw, max_messages=max_messages)
    t.model, t.stream = body.model, bool(body.stream)
    t.prompt_hash = prompt_hash(req.messages)
    t.messages = [m.as_dict() for m in req.messages]
    return body, req


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """The handler; the app's parts come from its keys (``rung.server.state``)."""
    app = request.app
    config, gateway = app[CONFIG], app[GATEWAY]
    rid = _request_id()
    ex = Exchange(app[SINKS], config.store.redact, Trace(id=rid, time=time.time(), model=""))
    key: ApiKey | None = None
    try:
        key = await admit(request, ex.trace)
        raw = await read_body(request, config.server.max_body_bytes)
        parse = functools.partial(_parse, raw, ex.trace, max_messages=config.server.max_messages)
        # A body of megabytes takes tens of milliseconds to parse, hash and copy: not on
        # the event loop (a small one is faster inline than a hop to a thread).
        body, req = await asyncio.to_thread(parse) if len(raw) > _INLINE_BYTES else parse()
        opts = body.rung
        pin: str | None = opts.tier if opts else None
        thresholds: Sequence[float] | None = opts.thresholds if opts else None
        if opts is not None and opts.prompt is not None:
            used = await use_prompt(app, ex.trace, opts.prompt, opts.variables, req, pin=pin,
                                    thresholds=thresholds,
                                    who=body.user or (key.id if key else None))
            req, pin, thresholds, ex.prompt = used.request, used.pin, used.thresholds, \
                used.prompt
        ex.tools = ToolUse.of(req.tools, req.tool_choice)
        tools_wire.check_allowed(config.tools, req.tools, key=key)
        ex.reply = gateway.reply(body.model, req, pin=pin, thresholds=thresholds)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _stream_response(request, ex.reply, ex, rid=rid,
                                          include_usage=include_usage,
                                          with_logprobs=req.logprobs)
        return await _full_response(ex.reply, ex, rid=rid, with_logprobs=req.logprobs)
    except RungError as exc:
        return await ex.refuse(exc)
    finally:
        if ex.reply is not None:
            await ex.reply.aclose()


async def _full_response(reply: Reply, ex: Exchange, *, rid: str,
                         with_logprobs: bool) -> web.Response:
    parts: list[str] = []
    lps: list[TokenLogprob] = []
    calls: list[ToolCallDelta] = []
    last = Chunk()
    async for chunk in reply:
        ex.first_token()
        parts.append(chunk.text)
        lps.extend(chunk.logprobs)
        calls.extend(chunk.tool_calls)
        last = chunk
    text = "".join(parts)
    tool_calls = assemble_tool_calls(calls)
    await ex.finish(usage=last.usage, text=text, calls=tool_calls)
    route = reply.route
    body = wire.completion_json(
        rid=rid, model=route.tier or route.requested, text=text,
        logprobs=lps if with_logprobs else None, finish_reason=last.finish_reason,
        usage=last.usage, rung=ex.shown if ex.shown is not None else ex.client_route(route),
        tool_calls=tool_calls)
    return web.Response(body=body, content_type="application/json",
                        headers=route_headers(route))


async def _stream_response(request: web.Request, reply: Reply, ex: Exchange, *, rid: str,
                           include_usage: bool, with_logprobs: bool) -> web.StreamResponse:
    # Wait for the first chunk before sending headers, so that errors raised before any
    # text exists (bad request, full queue, every tier down) keep their HTTP status.
    it = reply.__aiter__()
    try:
        first: Chunk | None = await it.__anext__()
    except StopAsyncIteration:
        first = None
    ex.first_token()
    created = int(time.time())
    route = reply.route
    model = route.tier or route.requested
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        **route_headers(route)})
    await resp.prepare(request)
    await resp.write(wire.chunk_event(rid=rid, model=model, created=created, role=True))
    last = Chunk()
    parts: list[str] = []
    calls: list[ToolCallDelta] = []
    try:
        chunk = first
        while chunk is not None:
            if chunk.text or chunk.tool_calls or (with_logprobs and chunk.logprobs) \
                    or chunk.finish_reason:
                await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                                  chunk=chunk, with_logprobs=with_logprobs))
            parts.append(chunk.text)
            calls.extend(chunk.tool_calls)
            last = chunk
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                chunk = None
        if last.finish_reason is None:
            await resp.write(wire.chunk_event(rid=rid, model=model, created=created,
                                              chunk=Chunk(finish_reason="stop")))
        if include_usage:
            await resp.write(wire.usage_event(
                rid=rid, model=model, created=created, usage=last.usage,
                rung=ex.client_route(reply.route)))
        await ex.finish(usage=last.usage, text="".join(parts),
                        calls=assemble_tool_calls(calls))
        await resp.write(wire.DONE_EVENT)
    except RungError as exc:
        # Headers are gone: report the error as a last event, as OpenAI does.
        await ex.finish(status=exc.code or "error", usage=last.usage, text="".join(parts),
                        error=exc.message, calls=assemble_tool_calls(calls))
        await resp.write(b"data: " + error_response(exc).body + b"\n\n")  # type: ignore[operator]
    except (ConnectionResetError, asyncio.CancelledError):
        await ex.finish(status="client_closed", usage=last.usage, text="".join(parts),
                        error="the client closed the connection",
                        calls=assemble_tool_calls(calls))
        raise
    return resp
