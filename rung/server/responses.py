"""``POST /v1/responses`` (and ``GET``/``DELETE /v1/responses/{id}``): OpenAI's Responses
API over the chat path's core.

A request is parsed by :mod:`rung.server.responses_wire` into the chat request the
gateway routes; its accounting is chat's :class:`~rung.server.chat.Exchange` (one trace
per request, errors included, durable before the client sees the end of the answer;
keys, limits, metrics, telemetry and the judge alike). With ``store`` (the default) the
response is kept, so that ``previous_response_id`` can continue it: a key reads and
continues only its own responses (an admin key any). ``store.redact`` keeps none.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from rung.auth.keys import ApiKey
from rung.cascade import Reply
from rung.errors import NotFound, RequestError, RungError
from rung.server import responses_wire as rw
from rung.server import tools_wire
from rung.server.chat import Exchange, admit, new_id, read_body, route_headers
from rung.server.errors import error_response
from rung.server.prompts import use_prompt
from rung.server.state import ACCESS, CONFIG, GATEWAY, SINKS, STORE
from rung.store.base import TraceStore
from rung.store.responses import StoredResponse
from rung.store.trace import ToolUse, Trace, prompt_hash
from rung.types import (
    Chunk,
    Message,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    assemble_tool_calls,
)

log = logging.getLogger("rung.server.responses")

_INLINE_BYTES = 64 * 1024


@dataclass
class _Call:
    """One function call as it streams: its item, and what has arrived of it."""

    item_id: str
    output_index: int
    call: ToolCall


@dataclass
class _Answer:
    """What the model said so far, as output items in the order they were opened."""

    with_logprobs: bool
    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    message: tuple[str, int] | None = None  # (item id, output index) once text arrived
    calls: dict[int, _Call] = field(default_factory=dict)
    deltas: list[ToolCallDelta] = field(default_factory=list)
    opened: int = 0
    last: Chunk = field(default_factory=Chunk)

    def open_message(self) -> tuple[str, int]:
        self.message = (new_id("msg_"), self.opened)
        self.opened += 1
        return self.message

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return assemble_tool_calls(self.deltas)

    def output(self) -> list[dict[str, Any]]:
        """The finished output items; an answer with neither text nor calls is one empty
        message, as OpenAI's is."""
        items: list[tuple[int, dict[str, Any]]] = []
        lps = self.logprobs if self.with_logprobs else None
        if self.message is not None or not self.calls:
            item_id, index = self.message or (new_id("msg_"), -1)
            items.append((index, rw.message_item(item_id, "".join(self.text), lps=lps)))
        whole = {c.id: c for c in self.tool_calls()}
        for c in self.calls.values():
            items.append((c.output_index, rw.call_item(c.item_id, whole.get(c.call.id, c.call))))
        return [item for _, item in sorted(items, key=lambda x: x[0])]

    def status(self) -> tuple[str, str | None]:
        if self.last.finish_reason == "length":
            return "incomplete", "max_output_tokens"
        return "completed", None


def _owned(key: ApiKey | None, kept: StoredResponse | None) -> StoredResponse | None:
    if kept is None or key is None or key.admin or kept.key_id == key.id:
        return kept
    return None


async def _history(store: TraceStore, p: rw.ParsedResponses, key: ApiKey | None, *,
                   redact: bool) -> tuple[Message, ...]:
    prev = p.body.previous_response_id
    if prev is None:
        return ()
    if redact:
        raise RequestError("'previous_response_id' needs kept responses, and this gateway "
                           "keeps none (store.redact is on): send the whole conversation "
                           "in 'input'.", param="previous_response_id",
                           code="unsupported_parameter")
    kept = _owned(key, await asyncio.to_thread(store.get_response, prev))
    if kept is None:
        raise NotFound(f"Previous response with id '{prev}' not found.",
                       param="previous_response_id", code="previous_response_not_found")
    return kept.turns


async def create_response(request: web.Request) -> web.StreamResponse:
    app = request.app
    config, gateway, store = app[CONFIG], app[GATEWAY], app[STORE]
    rid = new_id("resp_")
    ex = Exchange(app[SINKS], config.store.redact, Trace(id=rid, time=time.time(), model=""))
    key: ApiKey | None = None
    try:
        key = await admit(request, ex.trace)
        raw = await read_body(request, config.server.max_body_bytes)
        p = await asyncio.to_thread(rw.parse, raw) if len(raw) > _INLINE_BYTES \
            else rw.parse(raw)
        ex.trace.model, ex.trace.stream = p.body.model, p.stream
        history = await _history(store, p, key, redact=config.store.redact)
        build = functools.partial(rw.chat_request, p, history,
                                  max_messages=config.server.max_messages)
        req = await asyncio.to_thread(build) if len(raw) > _INLINE_BYTES else build()
        ex.trace.prompt_hash = prompt_hash(req.messages)
        ex.trace.messages = [m.as_dict() for m in req.messages]
        opts = p.body.rung
        pin: str | None = opts.tier if opts else None
        thresholds: Sequence[float] | None = opts.thresholds if opts else None
        if opts is not None and opts.prompt is not None:  # its turns go before instructions
            who = p.body.user or p.body.safety_identifier or (key.id if key else None)
            used = await use_prompt(app, ex.trace, opts.prompt, opts.variables, req, pin=pin,
                                    thresholds=thresholds, who=who)
            req, pin, thresholds, ex.prompt = used.request, used.pin, used.thresholds, \
                used.prompt
        ex.tools = ToolUse.of(req.tools, req.tool_choice)
        tools_wire.check_allowed(config.tools, req.tools, key=key)
        ex.reply = gateway.reply(p.body.model, req, pin=pin, thresholds=thresholds)
        keep = _Keeper(store, p, history, key, enabled=p.store and not config.store.redact)
        if p.stream:
            return await _stream(request, ex.reply, ex, p, keep, rid=rid)
        return await _full(ex.reply, ex, p, keep, rid=rid)
    except RungError as exc:
        return await ex.refuse(exc)
    finally:
        if ex.reply is not None:
            await ex.reply.aclose()


@dataclass
class _Keeper:
    """Keeps a finished response for ``previous_response_id`` (when ``store``)."""

    store: TraceStore
    parsed: rw.ParsedResponses
    history: Sequence[Message]
    key: ApiKey | None
    enabled: bool

    def soon(self, rid: str, body: dict[str, Any],
             answer: _Answer) -> asyncio.Future[None] | None:
        """Start keeping the response (it is committed with the request's trace, which
        the caller writes next); None when it is not to be kept."""
        if not self.enabled:
            return None
        said = Message("assistant", "".join(answer.text), tool_calls=answer.tool_calls())
        kept = StoredResponse(rid, time.time(), self.key.id if self.key else None, body,
                              (*self.history, *self.parsed.turns, said))
        return self.store.keep_response_soon(kept)


async def _kept_ok(fut: asyncio.Future[None] | None, rid: str) -> bool:
    """Whether the response was kept. A store that failed is logged, and the client is
    told (``store: false``) rather than denied its answer."""
    if fut is None:
        return False
    try:
        await fut
    except Exception:  # the answer exists; only its keeping failed
        log.exception("could not keep response %s", rid)
        return False
    return True


def _body(p: rw.ParsedResponses, reply: Reply, ex: Exchange, answer: _Answer, *,
          rid: str, stored: bool) -> dict[str, Any]:
    route = reply.route
    status, why = answer.status()
    return rw.response_json(
        p, rid=rid, created=ex.trace.time, model=route.tier or route.requested,
        status=status, incomplete=why, output=answer.output(), usage=answer.last.usage,
        stored=stored, rung=ex.client_route(route))


async def _full(reply: Reply, ex: Exchange, p: rw.ParsedResponses, keep: _Keeper, *,
                rid: str) -> web.Response:
    answer = _Answer(p.with_logprobs)
    async for chunk in reply:
        ex.first_token()
        answer.text.append(chunk.text)
        answer.logprobs.extend(chunk.logprobs)
        for d in chunk.tool_calls:
            if d.index not in answer.calls:
                answer.calls[d.index] = _Call(new_id("fc_"), answer.opened,
                                              ToolCall(d.id or "", d.name or "", ""))
                answer.opened += 1
        answer.deltas.extend(chunk.tool_calls)
        answer.last = chunk
    if answer.text and any(answer.text) and answer.message is None:
        answer.message = (new_id("msg_"), -1)  # text comes first in a buffered answer
    body = _body(p, reply, ex, answer, rid=rid, stored=keep.enabled)
    kept = keep.soon(rid, body, answer)
    await ex.finish(usage=answer.last.usage, text="".join(answer.text),
                    calls=answer.tool_calls())
    body["store"] = await _kept_ok(kept, rid)
    return web.Response(body=orjson.dumps(body), content_type="application/json",
                        headers=route_headers(reply.route))


class _Events:
    """Typed server-sent events, numbered in the order they are written."""

    def __init__(self, resp: web.StreamResponse) -> None:
        self._resp = resp
        self._seq = 0

    async def send(self, kind: str, **fields: Any) -> None:
        data = orjson.dumps({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        await self._resp.write(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")


async def _stream(request: web.Request, reply: Reply, ex: Exchange, p: rw.ParsedResponses,
                  keep: _Keeper, *, rid: str) -> web.StreamResponse:
    # The first chunk comes before the headers, so that errors raised before any text
    # exists (bad request, full queue, every tier down) keep their HTTP status.
    it = reply.__aiter__()
    try:
        first: Chunk | None = await it.__anext__()
    except StopAsyncIteration:
        first = None
    ex.first_token()
    route = reply.route
    model = route.tier or route.requested
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", **route_headers(route)})
    await resp.prepare(request)
    ev = _Events(resp)
    answer = _Answer(p.with_logprobs)
    start = rw.response_json(p, rid=rid, created=ex.trace.time, model=model,
                             status="in_progress", output=[], usage=None, stored=keep.enabled,
                             rung=None)
    await ev.send("response.created", response=start)
    await ev.send("response.in_progress", response=start)
    try:
        chunk = first
        while chunk is not None:
            await _stream_chunk(ev, answer, chunk)
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                chunk = None
        body = _body(p, reply, ex, answer, rid=rid, stored=keep.enabled)
        kept = keep.soon(rid, body, answer)
        await ex.finish(usage=answer.last.usage, text="".join(answer.text),
                        calls=answer.tool_calls())
        body["store"] = await _kept_ok(kept, rid)
        await _stream_done(ev, answer, body)
        status = body["status"]
        await ev.send("response.completed" if status == "completed" else "response.incomplete",
                      response=body)
    except RungError as exc:
        # Headers are gone: the failure is the stream's last event, as OpenAI's is.
        await ex.finish(status=exc.code or "error", usage=answer.last.usage,
                        text="".join(answer.text), error=exc.message,
                        calls=answer.tool_calls())
        failed = rw.response_json(p, rid=rid, created=ex.trace.time, model=model,
                                  status="failed", output=answer.output(),
                                  usage=answer.last.usage, stored=False,
                                  rung=ex.client_route(route),
                                  error={"code": exc.code or "server_error",
                                         "message": exc.message})
        await ev.send("response.failed", response=failed)
    except (ConnectionResetError, asyncio.CancelledError):
        await ex.finish(status="client_closed", usage=answer.last.usage,
                        text="".join(answer.text), error="the client closed the connection",
                        calls=answer.tool_calls())
        raise
    return resp


async def _stream_chunk(ev: _Events, answer: _Answer, chunk: Chunk) -> None:
    answer.last = chunk
    if chunk.text:
        if answer.message is None:
            item_id, index = answer.open_message()
            await ev.send("response.output_item.added", output_index=index,
                          item=rw.message_item(item_id, "", status="in_progress"))
            await ev.send("response.content_part.added", item_id=item_id,
                          output_index=index, content_index=0,
                          part=rw.text_part("", [] if answer.with_logprobs else None))
        item_id, index = answer.message  # type: ignore[misc]
        lps = rw.logprobs_out(chunk.logprobs) if answer.with_logprobs else []
        await ev.send("response.output_text.delta", item_id=item_id, output_index=index,
                      content_index=0, delta=chunk.text, logprobs=lps)
        answer.text.append(chunk.text)
    answer.logprobs.extend(chunk.logprobs)
    for d in chunk.tool_calls:
        call = answer.calls.get(d.index)
        if call is None:
            call = _Call(new_id("fc_"), answer.opened, ToolCall(d.id or "", d.name or "", ""))
            answer.calls[d.index] = call
            answer.opened += 1
            await ev.send("response.output_item.added", output_index=call.output_index,
                          item=rw.call_item(call.item_id, call.call, status="in_progress"))
        if d.arguments:
            await ev.send("response.function_call_arguments.delta", item_id=call.item_id,
                          output_index=call.output_index, delta=d.arguments)
    answer.deltas.extend(chunk.tool_calls)


async def _stream_done(ev: _Events, answer: _Answer, body: dict[str, Any]) -> None:
    """The ``.done`` events of every item, in output order (an answer without text or
    calls gets its empty message here, added and done at once)."""
    for index, item in enumerate(body["output"]):
        if item["type"] == "message":
            if answer.message is None:
                await ev.send("response.output_item.added", output_index=index,
                              item={**item, "status": "in_progress", "content": []})
                await ev.send("response.content_part.added", item_id=item["id"],
                              output_index=index, content_index=0,
                              part={**item["content"][0], "text": ""})
            part = item["content"][0]
            await ev.send("response.output_text.done", item_id=item["id"], output_index=index,
                          content_index=0, text=part["text"],
                          logprobs=part.get("logprobs", []))
            await ev.send("response.content_part.done", item_id=item["id"],
                          output_index=index, content_index=0, part=part)
        else:
            await ev.send("response.function_call_arguments.done", item_id=item["id"],
                          output_index=index, name=item["name"],
                          arguments=item["arguments"])
        await ev.send("response.output_item.done", output_index=index, item=item)


async def _kept(request: web.Request) -> tuple[StoredResponse, ApiKey | None]:
    access = request.app[ACCESS]
    key = access.authenticate(request.headers.get("Authorization")) \
        if access is not None else None
    rid = request.match_info["response_id"]
    kept = _owned(key, await asyncio.to_thread(request.app[STORE].get_response, rid))
    if kept is None:
        raise NotFound(f"Response with id '{rid}' not found.", param="response_id",
                       code="response_not_found")
    return kept, key


async def get_response(request: web.Request) -> web.Response:
    """``GET /v1/responses/{id}``: a kept response, as it was returned."""
    try:
        kept, _ = await _kept(request)
    except RungError as exc:
        return error_response(exc)
    return web.Response(body=orjson.dumps(kept.body), content_type="application/json")


async def delete_response(request: web.Request) -> web.Response:
    """``DELETE /v1/responses/{id}``: forget a kept response (its trace stays)."""
    try:
        kept, _ = await _kept(request)
        await asyncio.to_thread(request.app[STORE].delete_response, kept.id)
    except RungError as exc:
        return error_response(exc)
    return web.json_response({"id": kept.id, "object": "response", "deleted": True})


async def list_input_items(request: web.Request) -> web.Response:
    """``GET /v1/responses/{id}/input_items``: what a kept response answered (the turns
    it continued and its own input; not its instructions), newest first unless
    ``order=asc``."""
    try:
        kept, _ = await _kept(request)
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise RequestError("'order' is 'asc' or 'desc'.", param="order",
                               code="invalid_value")
    except RungError as exc:
        return error_response(exc)
    turns = kept.turns[:-1]  # the last kept turn is the response's own output
    ids = [f"item_{kept.id.removeprefix('resp_')}_{i}" for i in range(len(turns))]
    return web.json_response(rw.input_items_json(turns, ids=ids,
                                                 order="asc" if order == "asc" else "desc"))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
