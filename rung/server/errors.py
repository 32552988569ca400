"""The one place where errors become OpenAI-style JSON responses."""

from __future__ import annotations

import math

import orjson
from aiohttp import web

from rung.errors import Overloaded, RateLimited, RungError


def error_body(message: str, *, type_: str, param: str | None, code: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param,
                                   "code": code}})


def error_response(exc: RungError) -> web.Response:
    headers = {}
    if isinstance(exc, Overloaded | RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return web.Response(status=exc.status, headers=headers, content_type="application/json",
                        body=error_body(exc.message, type_=exc.type, param=exc.param,
                                        code=exc.code))


def plain_error(status: int, message: str, *, code: str, type_: str = "invalid_request_error",
                param: str | None = None) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=error_body(message, type_=type_, param=param, code=code))
