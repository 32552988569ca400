"""A minimal OpenAI-compatible upstream that answers instantly, for benchmarks and tests.

It is a real HTTP server (aiohttp) on loopback. It answers ``/v1/chat/completions``
with a fixed reply (or an echo of the last user message), streaming or not, and
``/v1/embeddings`` with deterministic vectors; it can be told to fail, stall or hang so
that tests can drive rung's fallbacks, or to call tools.

    python -m rung.devtools.upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from rung.types import ToolCall


@dataclass
class UpstreamBehaviour:
    reply: str | None = "Hello from the upstream."  # None: echo the last user message
    reply_fn: Callable[[str], str] | None = None  # the last user message -> the reply
    fail_status: int | None = None  # answer every request with this status
    fail_first: int = 0  # answer the next N requests with 503, then normally
    delay_s: float = 0.0  # wait before answering
    # Answer a request that has tools with these calls (unless its last turn is a tool
    # result: that one gets the text reply), as OpenAI does: content null, finish
    # "tool_calls"; streamed as a first piece with id and name, then argument fragments.
    tool_calls: list[ToolCall] | None = None
    calls: int = 0
    last_body: dict[str, Any] | None = None  # the last request, as received
    # Given a list, every request is appended to it as received, so a client's tool loop
    # can be read turn by turn (opt-in: a benchmark's upstream keeps nothing).
    bodies: list[dict[str, Any]] | None = None


BEHAVIOUR = web.AppKey("behaviour", UpstreamBehaviour)


def _words(text: str) -> list[str]:
    out: list[str] = []
    for i, w in enumerate(text.split(" ")):
        out.append(w if i == 0 else " " + w)
    return out


async def _chat(request: web.Request) -> web.StreamResponse:
    b = request.app[BEHAVIOUR]
    b.calls += 1
    body: dict[str, Any] = orjson.loads(await request.read())
    b.last_body = body
    if b.bodies is not None:
        b.bodies.append(body)
    if b.delay_s:
        await asyncio.sleep(b.delay_s)
    if b.fail_first > 0 or b.fail_status is not None:
        status = b.fail_status or 503
        b.fail_first = max(0, b.fail_first - 1)
        return web.Response(status=status, content_type="application/json",
                            body=orjson.dumps({"error": {"message": "scripted failure",
                                                         "type": "server_error"}}))
    messages = body.get("messages") or [{}]
    if b.tool_calls and body.get("tools") and messages[-1].get("role") != "tool":
        return await _tool_calls(request, body, b.tool_calls)
    last_user = next((m.get("content", "") for m in reversed(body.get("messages", []))
                      if m.get("role") == "user"), "")
    text = b.reply_fn(str(last_user)) if b.reply_fn is not None else \
        b.reply if b.reply is not None else str(last_user)
    words = _words(text)
    if body.get("max_tokens"):
        words = words[: int(body["max_tokens"])]
    text = "".join(words)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
             "total_tokens": prompt_tokens + len(words)}
    rid, created, model = "chatcmpl-up", int(time.time()), body.get("model", "upstream")
    if not body.get("stream"):
        return web.Response(content_type="application/json", body=orjson.dumps({
            "id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage}))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)

    def event(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({"id": rid, "object": "chat.completion.chunk",
                                         "created": created, "model": model,
                                         "choices": choices, **extra}) + b"\n\n"

    for w in words:
        await resp.write(event([{"index": 0, "delta": {"content": w}, "finish_reason": None}]))
    await resp.write(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        await resp.write(event([], usage=usage))
    await resp.write(b"data: [DONE]\n\n")
    return resp


def _pieces(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)]


async def _tool_calls(request: web.Request, body: dict[str, Any],
                      calls: list[ToolCall]) -> web.StreamResponse:
    rid, created, model = "chatcmpl-up", int(time.time()), body.get("model", "upstream")
    usage = {"prompt_tokens": 10, "completion_tokens": 5 * len(calls),
             "total_tokens": 10 + 5 * len(calls)}
    if not body.get("stream"):
        return web.Response(content_type="application/json", body=orjson.dumps({
            "id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [c.as_dict() for c in calls]}}],
            "usage": usage}))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)

    async def event(choices: list[Any], **extra: Any) -> None:
        await resp.write(b"data: " + orjson.dumps({
            "id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, **extra}) + b"\n\n")

    await event([{"index": 0, "delta": {"role": "assistant", "content": None},
                  "finish_reason": None}])
    for i, c in enumerate(calls):
        first = {"index": i, "id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": ""}}
        await event([{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}])
        for piece in _pieces(c.arguments):
            await event([{"index": 0, "finish_reason": None, "delta": {
                "tool_calls": [{"index": i, "function": {"arguments": piece}}]}}])
    await event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
    if (body.get("stream_options") or {}).get("include_usage"):
        await event([], usage=usage)
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def _embeddings(request: web.Request) -> web.Response:
    """Deterministic vectors (8 dimensions, or ``dimensions``) made from each input's
    hash, float or base64 as asked; token-id arrays are accepted, as OpenAI does."""
    b = request.app[BEHAVIOUR]
    b.calls += 1
    body: dict[str, Any] = orjson.loads(await request.read())
    b.last_body = body
    if b.fail_status is not None:
        return web.Response(status=b.fail_status, content_type="application/json",
                            body=orjson.dumps({"error": {"message": "scripted failure",
                                                         "type": "invalid_request_error"}}))
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
    dim = int(body.get("dimensions") or 8)
    data, tokens = [], 0
    for i, x in enumerate(inputs or []):
        seed = int.from_bytes(hashlib.sha256(orjson.dumps(x)).digest()[:8], "little")
        vec = np.random.default_rng(seed).standard_normal(dim).astype("<f4")
        tokens += len(x) if isinstance(x, list) else len(str(x).split())
        emb: Any = base64.b64encode(vec.tobytes()).decode() \
            if body.get("encoding_format") == "base64" else vec.tolist()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return web.Response(content_type="application/json", body=orjson.dumps({
        "object": "list", "data": data, "model": body.get("model", "upstream"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))


async def _models(request: web.Request) -> web.Response:
    """What any OpenAI-compatible server lists (a readiness probe for scripts)."""
    return web.json_response({"object": "list", "data": [
        {"id": "upstream", "object": "model", "created": 0, "owned_by": "rung-devtools"}]})


def create_upstream_app(behaviour: UpstreamBehaviour | None = None) -> web.Application:
    app = web.Application()
    app[BEHAVIOUR] = behaviour or UpstreamBehaviour()
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_get("/v1/models", _models)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--reply", default="Hello from the upstream.")
    p.add_argument("--tool-call", default=None, metavar="NAME:ARGS",
                   help="answer a request with tools with this call, e.g. "
                   "'get_weather:{\"city\": \"Paris\"}'")
    args = p.parse_args()
    calls = None
    if args.tool_call:
        name, _, arguments = args.tool_call.partition(":")
        calls = [ToolCall("call_up1", name, arguments or "{}")]
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(create_upstream_app(UpstreamBehaviour(reply=args.reply, tool_calls=calls)),
                host=args.host,
                port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
