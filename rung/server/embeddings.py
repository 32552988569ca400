"""``POST /v1/embeddings``: parse, embed on the named tier, account, trace.

The model names an embedding tier (``embeddings.local_name``, or an upstream one from
``embeddings.tiers``). Accounting is the chat handler's: the same :class:`Exchange` hands
one trace per request (errors included) to the same sinks (metrics, the key's limits and
budgets, the store, telemetry), less those that re-ask a chat tier about an answer (the
shadow, the sampled judge). The trace says ``route.endpoint = "embeddings"``
(:attr:`Trace.endpoint`); its inputs are not stored, only their hash and count.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rung.backends.embedding import F32, EmbeddingTiers, Inputs
from rung.errors import PayloadTooLarge, RequestError, RungError
from rung.server.chat import Exchange, admit
from rung.server.errors import error_response
from rung.server.sinks import JudgeSink, ShadowSink, Sink
from rung.server.state import CONFIG, SINKS
from rung.server.wire import json_object, validated
from rung.store.trace import Trace

EMBEDDINGS = web.AppKey("embeddings", EmbeddingTiers)
_TASKS = web.AppKey("embeddings_tasks", list)
ENDPOINT = "embeddings"
_INLINE_BYTES = 64 * 1024


class EmbeddingsBody(BaseModel):
    """OpenAI's embeddings request. ``encoding_format`` defaults to float, as OpenAI's
    does (its Python SDK asks for base64 and decodes it)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    model: Annotated[str, Field(min_length=1)]
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


def parse(raw: bytes, *, max_inputs: int) -> tuple[EmbeddingsBody, Inputs]:
    """The body and its inputs as a list (texts, or token-id arrays); RequestError naming
    the bad param otherwise."""
    body = validated(EmbeddingsBody, json_object(raw))
    inputs: Inputs
    raw_in = body.input
    if isinstance(raw_in, str):
        inputs = [raw_in]
    elif raw_in and isinstance(raw_in[0], int):
        inputs = [raw_in]  # one token-id array
    else:
        inputs = raw_in  # type: ignore[assignment]
    if not inputs:
        raise RequestError("'input' must not be empty.", param="input", code="invalid_value")
    if len(inputs) > max_inputs:
        raise RequestError(f"Too many inputs: {len(inputs)} > {max_inputs} per request.",
                           param="input", code="invalid_value")
    for i, x in enumerate(inputs):
        if len(x) == 0:
            where = "input" if isinstance(raw_in, str) else f"input[{i}]"
            raise RequestError(f"'{where}' must not be empty.", param=where,
                               code="invalid_value")
    return body, inputs


def inputs_hash(inputs: Inputs) -> str:
    """What ``prompt_hash`` holds for an embeddings trace: one hash over every input."""
    h = hashlib.sha256()
    for x in inputs:
        h.update(x.encode() if isinstance(x, str) else orjson.dumps(list(x)))
        h.update(b"\x01")
    return h.hexdigest()[:32]


def embeddings_json(vectors: F32, *, model: str, tokens: int,
                    encoding: Literal["float", "base64"]) -> bytes:
    """OpenAI's ``list`` of ``embedding`` objects; base64 is of little-endian float32."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    items: list[dict[str, Any]] = [
        {"object": "embedding", "index": i,
         "embedding": base64.b64encode(row.tobytes()).decode() if encoding == "base64"
         else row}
        for i, row in enumerate(rows)]
    return orjson.dumps({"object": "list", "data": items, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                        option=orjson.OPT_SERIALIZE_NUMPY)


async def _read(request: web.Request, limit: int) -> bytes:
    try:
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit,
                                                actual_size=request.content_length)
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.") \
            from exc


def _sinks(sinks: Sequence[Sink]) -> list[Sink]:
    # The shadow and the judge ask a chat tier about a chat answer: not for vectors.
    return [s for s in sinks if not isinstance(s, ShadowSink | JudgeSink)]


async def create_embeddings(request: web.Request) -> web.Response:
    """The handler; the tiers come from the app (:func:`add_embeddings`)."""
    app = request.app
    config = app[CONFIG]
    trace = Trace(id=f"embd-{os.urandom(12).hex()}", time=time.time(), model="",
                  route={"endpoint": ENDPOINT})
    ex = Exchange(_sinks(app[SINKS]), config.store.redact, trace)
    try:
        await admit(request, trace)
        raw = await _read(request, config.server.max_body_bytes)

        def parsed() -> tuple[EmbeddingsBody, Inputs, str]:
            body, inputs = parse(raw, max_inputs=config.embeddings.max_inputs)
            return body, inputs, inputs_hash(inputs)
        # Megabytes of inputs take milliseconds to parse and hash: not on the event loop.
        body, inputs, trace.prompt_hash = \
            await asyncio.to_thread(parsed) if len(raw) > _INLINE_BYTES else parsed()
        trace.model = body.model
        tier = app[EMBEDDINGS].get(body.model)
        trace.tier = tier.name
        trace.route.update(tier=tier.name, reason="requested", inputs=len(inputs))
        done = await tier.embed(inputs, dimensions=body.dimensions, user=body.user)
        encoding = body.encoding_format or "float"
        encode = functools.partial(embeddings_json, done.vectors, model=tier.name,
                                   tokens=done.prompt_tokens, encoding=encoding)
        out = await asyncio.to_thread(encode) if len(done.vectors) > 32 else encode()
        trace.input_tokens, trace.cost = done.prompt_tokens, done.cost
        trace.route.update(cost=done.cost, compute_s=round(done.compute_s, 6),
                           dimensions=int(done.vectors.shape[1]) if done.vectors.size else 0,
                           encoding_format=encoding, usage_known=done.usage_known)
        # usage=None: the tokens are on the trace already; chat's "cost on the top tier"
        # baseline (counted for requests with usage) means nothing for vectors.
        await ex.finish()
        return web.Response(body=out, content_type="application/json",
                            headers={"x-rung-tier": tier.name})
    except RungError as exc:
        await ex.finish(status=exc.code or "error", error=exc.message)
        resp = error_response(exc)
        if trace.tier is not None:
            resp.headers["x-rung-tier"] = trace.tier
        return resp
    except asyncio.CancelledError:
        await ex.finish(status="client_closed", error="the client closed the connection")
        raise


def add_embeddings(app: web.Application) -> None:
    """Serve ``POST /v1/embeddings`` with the config's embedding tiers (the local one
    loads on its first request, or at start-up with ``embeddings.preload``)."""
    tiers = app[EMBEDDINGS] = EmbeddingTiers(app[CONFIG].embeddings)
    app[_TASKS] = []

    async def on_startup(app: web.Application) -> None:
        app[_TASKS].append(asyncio.create_task(tiers.start()))

    async def on_cleanup(app: web.Application) -> None:
        for task in app[_TASKS]:
            task.cancel()
        await tiers.aclose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/embeddings", create_embeddings)
