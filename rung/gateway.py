"""The core that the server and the CLI share: which tier answers a request.

A request names either a tier (it goes straight there) or the alias (``rung`` by
default), which starts at the cheapest tier and falls back to the next one when a tier
fails before it has produced any text. Every answer says which tier gave it and why,
in a :class:`Route`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rung.backends import build_backend
from rung.backends.base import Backend, ChatRequest, Chunk
from rung.config import Config
from rung.errors import BackendError, NoTierAvailable, Overloaded, UnknownModel

log = logging.getLogger("rung.gateway")


@dataclass
class Route:
    """Who answered and why; filled in as the request moves through the tiers."""

    requested: str
    tier: str | None = None
    reason: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "reason": self.reason, "attempts": self.attempts}

    def header(self) -> str:
        parts = [f"reason={self.reason}"]
        parts += [f"{a['tier']}:{a['outcome']}" for a in self.attempts]
        return ";".join(parts)


class Gateway:
    """Owns the tiers' backends; :meth:`stream` answers one request."""

    def __init__(self, config: Config, backends: Mapping[str, Backend] | None = None) -> None:
        self.config = config
        self.backends: dict[str, Backend] = dict(backends or {})
        for tier in config.tiers:
            if tier.name not in self.backends:
                self.backends[tier.name] = build_backend(tier, catalog=config.catalog)

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.config.tiers]

    @property
    def ready(self) -> bool:
        return all(b.ready for b in self.backends.values())

    async def start(self) -> None:
        await asyncio.gather(*(b.start() for b in self.backends.values()))

    async def aclose(self) -> None:
        await asyncio.gather(*(b.aclose() for b in self.backends.values()),
                             return_exceptions=True)

    def plan(self, model: str, *, pin: str | None = None) -> tuple[list[str], str]:
        """The tiers to try, in order, and why. Raises UnknownModel."""
        if pin is not None:
            if pin not in self.backends:
                raise UnknownModel(f"The tier '{pin}' does not exist.", param="rung.tier")
            return [pin], "pinned"
        if model == self.config.alias:
            return self.tier_names, "cheapest-first"
        if model in self.backends:
            return [model], "requested"
        names = ", ".join([self.config.alias, *self.tier_names])
        raise UnknownModel(f"The model '{model}' does not exist. Available: {names}.",
                           param="model")

    async def stream(self, model: str, request: ChatRequest, route: Route,
                     *, pin: str | None = None) -> AsyncGenerator[Chunk, None]:
        """Answer ``request``; errors before the first chunk move on to the next tier."""
        tiers, route.reason = self.plan(model, pin=pin)
        last: Exception | None = None
        for name in tiers:
            started = False
            try:
                async for chunk in self.backends[name].stream(request):
                    if not started:
                        started = True
                        route.tier = name
                    yield chunk
                if not started:  # an empty stream is still an answer
                    route.tier = name
                route.attempts.append({"tier": name, "outcome": "answered"})
                return
            except (BackendError, Overloaded) as exc:
                route.attempts.append({"tier": name, "outcome": type(exc).__name__})
                if started or len(tiers) == 1:
                    raise
                log.warning("tier %s failed, falling back: %s", name, exc.message)
                last = exc
        raise NoTierAvailable(f"No tier could answer: {last}") from last
