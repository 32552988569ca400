"""``POST /v1/feedback``: a score for one answer, kept with its trace.

Body: ``{"id": "<the completion's id>", "score": <number in [0, 1]>, "comment": "..."}``
(1 = good; ``comment`` optional). 200 with the stored feedback; 400 for a bad body, 404 for
an id with no trace. Where keys are required, a key may rate its own requests and an
admin key any (403 otherwise).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rung.errors import Forbidden, NotFound, PayloadTooLarge, RungError
from rung.server.errors import error_response
from rung.server.state import ACCESS, CONFIG, STORE
from rung.server.wire import json_object, validated
from rung.store.feedback import Feedback

MAX_COMMENT = 4000


class FeedbackBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    id: Annotated[str, Field(min_length=1, max_length=200)]
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None


def parse(raw: bytes) -> FeedbackBody:
    data = json_object(raw)
    if isinstance(data.get("score"), int) and not isinstance(data.get("score"), bool):
        data["score"] = float(data["score"])  # 0 and 1 are numbers in [0, 1] too
    return validated(FeedbackBody, data)


async def post_feedback(request: web.Request) -> web.Response:
    app = request.app
    access, store = app[ACCESS], app[STORE]
    try:
        key = None
        if access is not None:
            key = access.authenticate(request.headers.get("Authorization"))
        limit = app[CONFIG].server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        body = parse(await request.read())
        trace = await asyncio.to_thread(store.get, body.id)
        if trace is None:
            raise NotFound(f"No completion with the id {body.id!r}.", param="id")
        if key is not None and not key.admin and trace.key_id != key.id:
            raise Forbidden("A key may rate only its own requests (an admin key any).")
        fb = Feedback(trace_id=body.id, score=body.score, time=time.time(),
                      comment=body.comment, key_id=key.id if key is not None else None)
        await asyncio.to_thread(store.add_feedback, fb)
    except RungError as exc:
        return error_response(exc)
    out = {"id": fb.trace_id, "object": "feedback", **fb.as_dict()}
    return web.Response(body=orjson.dumps(out), content_type="application/json")
