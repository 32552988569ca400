"""Registered prompts in the server: a request's ``rung.prompt``, and the admin API.

``use_prompt`` turns a request that names a prompt into the request the gateway routes
(chat and the Responses API alike; see :mod:`rung.prompts.apply`). The admin endpoints
(an admin key when keys are on) do what ``rung prompts`` does:

- ``GET /admin/api/prompts``: every prompt, its latest version and its labels
- ``GET /admin/api/prompts/{name}``: its versions and labels
- ``GET /admin/api/prompts/{name}/{ref}``: one version, by number or label
- ``POST /admin/api/prompts/{name}``: push ``{messages, variables?, config?, message?,
  label?}``; answers ``{"name", "version"}``
- ``PUT /admin/api/prompts/{name}/labels/{label}``: ``{"version": 3}`` or
  ``{"split": {"3": 0.9, "4": 0.1}}``
- ``POST /admin/api/prompts/{name}/labels/{label}/rollback``
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from rung.errors import ConfigError, RequestError, RungError
from rung.prompts.apply import Applied, apply_prompt, defaults_of
from rung.prompts.cache import PromptCache
from rung.prompts.model import PromptRef, Target, new_version
from rung.server.errors import error_response
from rung.server.state import ACCESS, CONFIG, STORE
from rung.store.prompts import PostgresPromptStore, PromptStore
from rung.store.trace import Trace, prompt_hash
from rung.types import ChatRequest

PROMPTS = web.AppKey("prompts", PromptCache)
_OPEN: web.AppKey[Callable[[], PromptStore]] = web.AppKey("prompts_open")
_T = TypeVar("_T")


async def use_prompt(app: web.Application, trace: Trace, text: str,
                     variables: Mapping[str, Any] | None, req: ChatRequest, *,
                     pin: str | None, thresholds: Sequence[float] | None,
                     who: str | None) -> Applied:
    """The request with the prompt's turns in front and its defaults applied, with the
    tier pin and thresholds to route it by; ``trace`` records the whole conversation
    (the caller records ``Applied.prompt`` in the route: ``Exchange.prompt``)."""
    applied = await apply_prompt(app[PROMPTS], text, variables, req, pin=pin,
                                 thresholds=thresholds, who=who)
    trace.prompt_hash = prompt_hash(applied.request.messages)
    trace.messages = [m.as_dict() for m in applied.request.messages]
    return applied


def _opener(app: web.Application) -> Callable[[], PromptStore]:
    """Fresh connections to the registry: the trace store's database."""
    from pathlib import Path

    from rung.store.base import is_postgres, sqlite_path

    db = getattr(app[STORE], "path", None)
    url = app[CONFIG].store.url
    timeout = app[CONFIG].prompts.timeout_s
    if isinstance(db, Path):
        return lambda: PromptStore(db)
    if is_postgres(url):
        from rung.auth.shared import bounded

        bounded_url = bounded(url, timeout)
        return lambda: PostgresPromptStore(bounded_url, migrate=False)
    path = sqlite_path(url)
    return lambda: PromptStore(path)


async def _admin(request: web.Request, fn: Callable[[PromptStore], _T]) -> _T:
    """``fn`` on a connection of its own, in a worker thread."""
    open_store = request.app[_OPEN]

    def run() -> _T:
        store = open_store()
        try:
            return fn(store)
        finally:
            store.close()
    try:
        return await asyncio.to_thread(run)
    except ConfigError as exc:  # what the caller sent is wrong: a 400, not a 500
        raise RequestError(exc.message, code="invalid_prompt") from exc


def _author(request: web.Request) -> str:
    access = request.app[ACCESS]
    if access is None:
        return "http"
    return access.authenticate(request.headers.get("Authorization"), admin=True).id


async def _json(request: web.Request) -> dict[str, Any]:
    from rung.server.wire import json_object

    return json_object(await request.read())


def _handler(fn: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        from rung.server.state import gate

        if (denied := gate(request, admin=True)) is not None:
            return denied
        try:
            return web.json_response(await fn(request))
        except RungError as exc:
            return error_response(exc)
    return handle


async def _list(request: web.Request) -> Any:
    def work(s: PromptStore) -> list[dict[str, Any]]:
        return [{"name": n, "latest": v, "updated": t,
                 "labels": {k: t.as_dict() for k, t in s.labels(n).items()}}
                for n, v, t in s.names()]
    return {"object": "list", "data": await _admin(request, work)}


async def _prompt(request: web.Request) -> Any:
    name = request.match_info["name"]

    def work(s: PromptStore) -> dict[str, Any]:
        s.latest(name)
        return {"name": name, "versions": [v.as_dict() for v in s.versions(name)],
                "labels": {k: t.as_dict() for k, t in s.labels(name).items()}}
    return await _admin(request, work)


async def _show(request: web.Request) -> Any:
    ref = PromptRef.parse(f"{request.match_info['name']}@{request.match_info['ref']}")

    def work(s: PromptStore) -> dict[str, Any]:
        if ref.version is not None:
            return s.version(ref.name, ref.version).as_dict()
        target = s.target(ref.name, ref.label or "production")
        out = s.version(ref.name, target.versions[0]).as_dict()
        return {**out, "label": ref.label, "target": target.as_dict()}
    return await _admin(request, work)


async def _push(request: web.Request) -> Any:
    name = request.match_info["name"]
    data = await _json(request)
    label = data.pop("label", None)
    if label is not None and not isinstance(label, str):
        raise RequestError("'label' must be a string.", param="label", code="invalid_value")
    author = _author(request)

    def work(s: PromptStore) -> dict[str, Any]:
        v = new_version(name, data, author=author)
        defaults_of(v.config)
        stored = s.push(v, label=label)
        return {"name": stored.name, "version": stored.version}
    out = await _admin(request, work)
    request.app[PROMPTS].forget(name)
    return out


def _target(data: dict[str, Any]) -> Target:
    try:
        if "split" in data and isinstance(data["split"], dict):
            return Target.of([(int(v), float(w)) for v, w in data["split"].items()])
        if isinstance(data.get("version"), int):
            return Target.single(int(data["version"]))
    except (ValueError, TypeError, ConfigError) as exc:
        raise RequestError(f"Invalid split: {exc}", param="split", code="invalid_value") \
            from exc
    raise RequestError("Send {\"version\": N} or {\"split\": {\"N\": weight, ...}}.",
                       param="version", code="invalid_value")


async def _label(request: web.Request) -> Any:
    name, label = request.match_info["name"], request.match_info["label"]
    target = _target(await _json(request))
    author = _author(request)
    moved = await _admin(request, lambda s: s.set_label(name, label, target, author=author))
    request.app[PROMPTS].forget(name, label)
    return {"name": name, "label": label, "target": moved.as_dict()}


async def _rollback(request: web.Request) -> Any:
    name, label = request.match_info["name"], request.match_info["label"]
    author = _author(request)
    moved = await _admin(request, lambda s: s.rollback(name, label, author=author))
    request.app[PROMPTS].forget(name, label)
    return {"name": name, "label": label, "target": moved.as_dict()}


def add_prompt_routes(app: web.Application) -> None:
    """The registry's cache (closed on clean-up) and the admin endpoints."""
    config = app[CONFIG]
    app[_OPEN] = _opener(app)
    app[PROMPTS] = PromptCache(app[_OPEN], label_ttl_s=config.prompts.label_ttl_s,
                               timeout_s=config.prompts.timeout_s)

    async def close(app: web.Application) -> None:
        await asyncio.to_thread(app[PROMPTS].close)
    app.on_cleanup.append(close)
    r = app.router
    r.add_get("/admin/api/prompts", _handler(_list))
    r.add_get("/admin/api/prompts/{name}", _handler(_prompt))
    r.add_post("/admin/api/prompts/{name}", _handler(_push))
    r.add_get("/admin/api/prompts/{name}/{ref}", _handler(_show))
    r.add_put("/admin/api/prompts/{name}/labels/{label}", _handler(_label))
    r.add_post("/admin/api/prompts/{name}/labels/{label}/rollback", _handler(_rollback))
