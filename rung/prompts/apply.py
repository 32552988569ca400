"""A request's ``rung.prompt``: which version answers it, and the request it becomes.

The version's rendered messages go in front of the request's own turns; its ``config``
fills what the request leaves unset (temperature, top_p, max_tokens, a response format
other than plain text, tools, a pinned tier, thresholds). What was used is recorded as
``{"name", "version", "label"}`` in the route (the response's ``rung`` field and the
trace; ``label`` is null for ``NAME@3``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from rung.errors import ConfigError, RequestError
from rung.prompts.cache import PromptCache
from rung.prompts.model import PromptRef, PromptVersion, render
from rung.types import ChatRequest, Message, Role

_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user",
                           "assistant": "assistant"}


@dataclass(frozen=True, slots=True)
class Defaults:
    """A version's ``config``, typed: what it sets where the request does not."""

    request: ChatRequest  # temperature, top_p, max_tokens, response_format, tools
    tier: str | None
    thresholds: tuple[float, ...] | None


def defaults_of(config: Mapping[str, Any]) -> Defaults:
    """``config`` checked as a chat request's fields are (the same parser, so a version
    cannot hold what a request could not); ConfigError says what is wrong."""
    from rung.server import wire

    body: dict[str, Any] = {"model": "-", "messages": [{"role": "user", "content": "-"}]}
    for k in ("temperature", "top_p"):
        if config.get(k) is not None:
            body[k] = float(config[k])
    for k in ("max_tokens", "response_format", "tools"):
        if config.get(k) is not None:
            body[k] = config[k]
    try:
        _, req = wire.parse_chat_request(orjson.dumps(body), max_messages=1)
    except RequestError as exc:
        raise ConfigError(f"prompt [config]: {exc.message}") from exc
    tier = config.get("tier")
    thresholds = config.get("thresholds")
    if tier is not None and not isinstance(tier, str):
        raise ConfigError("prompt [config]: tier must be a tier's name")
    if thresholds is not None and (
            not isinstance(thresholds, list)
            or not all(isinstance(x, int | float) and 0 <= x <= 1 for x in thresholds)):
        raise ConfigError("prompt [config]: thresholds must be a list of numbers in [0, 1]")
    return Defaults(req, tier, tuple(float(x) for x in thresholds) if thresholds else None)


@dataclass(frozen=True, slots=True)
class Applied:
    request: ChatRequest
    pin: str | None
    thresholds: Sequence[float] | None
    prompt: dict[str, Any]  # {"name", "version", "label"}: what the route records


async def choose(cache: PromptCache, ref: PromptRef, *,
                 who: str | None) -> tuple[PromptVersion, str | None]:
    """The version a request gets, and the label it came through (None for a version
    asked by number). A split label picks by ``who`` (sticky), else at random."""
    if ref.version is not None:
        return await cache.version(ref.name, ref.version), None
    label = ref.label or "production"
    target = await cache.target(ref.name, label)
    n = target.pick(who, salt=f"{ref.name}@{label}", draw=random.random())
    return await cache.version(ref.name, n), label


async def apply_prompt(cache: PromptCache, text: str, variables: Mapping[str, Any] | None,
                       req: ChatRequest, *, pin: str | None,
                       thresholds: Sequence[float] | None, who: str | None) -> Applied:
    ref = PromptRef.parse(text)
    version, label = await choose(cache, ref, who=who)
    turns = render(version, variables or {})
    key = (version.name, version.version)
    d = cache.memo.get(key)
    if d is None:
        d = cache.memo[key] = defaults_of(version.config)
    base = d.request
    messages = tuple(Message(_ROLES[m["role"]], m["content"]) for m in turns)
    merged = replace(
        req, messages=(*messages, *req.messages),
        temperature=req.temperature if req.temperature is not None else base.temperature,
        top_p=req.top_p if req.top_p is not None else base.top_p,
        max_tokens=req.max_tokens if req.max_tokens is not None else base.max_tokens,
        response_format=req.response_format if req.response_format.type != "text"
        else base.response_format,
        tools=req.tools or base.tools,
        tool_choice=req.tool_choice if req.tools else base.tool_choice)
    return Applied(merged, pin if pin is not None else d.tier,
                   thresholds if thresholds is not None else d.thresholds,
                   {"name": version.name, "version": version.version, "label": label})

