"""The core that the server, the CLI and the evaluator share: which tier answers.

A request names a tier (it goes straight there, unverified), or the alias (``rung`` by
default): the scorer rates it, the policy picks the starting tier from the thresholds,
and the cascade (``rung.cascade``) verifies and escalates from there. A per-request
override can pin a tier or replace the thresholds. :meth:`Gateway.reply` returns a lazy
:class:`~rung.cascade.Reply`: its chunks, then its frozen :class:`~rung.types.Route`
saying who answered and why.

With ``routing.sticky_s``, an agent's steps are routed as steps of one conversation:
when one escalated past its start, the later steps of that conversation (same system
prompt, tools and first user message; see ``rung.routing.steps``) start at the tier that
answered, for ``sticky_s`` seconds since last use, and their route's reason begins
"sticky". Only requests to the alias with the configured thresholds take part: a pinned
or named tier, or ``rung.thresholds``, neither follows nor sets it. The memory is per
process (``rung.routing.sticky``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence

from rung.backends import build_backend
from rung.backends.base import Backend
from rung.cascade import Cascade, Reply, RouteDraft
from rung.config import Config
from rung.errors import RequestError, UnknownModel
from rung.routing.policy import start_tier, sticky_start
from rung.routing.scorers import Scorer, build_scorer
from rung.routing.steps import conversation_key, read_step
from rung.routing.sticky import StickyStarts
from rung.types import ChatRequest, Chunk
from rung.verify.base import Verifier
from rung.verify.registry import tier_verifiers

__all__ = ["Gateway", "Reply"]


class Gateway:
    """Owns the tiers' backends, the scorer and the verifiers."""

    def __init__(self, config: Config, backends: Mapping[str, Backend] | None = None,
                 *, scorer: Scorer | None = None) -> None:
        self.config = config
        self.backends: dict[str, Backend] = dict(backends or {})
        for tier in config.tiers:
            if tier.name not in self.backends:
                self.backends[tier.name] = build_backend(tier, catalog=config.catalog)
        self.scorer = scorer or build_scorer(config.routing.scorer)
        self.verifiers: dict[str, list[Verifier]] = tier_verifiers(config)
        self.cascade = Cascade(config.tiers, self.backends, self.verifiers)
        sticky_s = config.routing.sticky_s
        self.sticky: StickyStarts | None = StickyStarts(sticky_s) if sticky_s > 0 else None

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.config.tiers]

    @property
    def ladder(self) -> list[str]:
        """The tiers a request to the alias may climb, cheapest first."""
        return [t.name for t in self.config.ladder_tiers]

    @property
    def ready(self) -> bool:
        return all(b.ready for b in self.backends.values())

    async def start(self) -> None:
        await asyncio.gather(*(b.start() for b in self.backends.values()))

    async def aclose(self) -> None:
        await asyncio.gather(*(b.aclose() for b in self.backends.values()),
                             return_exceptions=True)

    def check(self, model: str, *, pin: str | None = None,
              thresholds: Sequence[float] | None = None) -> None:
        """Raise UnknownModel / RequestError for a request that cannot be routed."""
        if pin is not None and pin not in self.backends:
            raise UnknownModel(f"The tier '{pin}' does not exist.", param="rung.tier")
        if model != self.config.alias and model not in self.backends:
            names = ", ".join([self.config.alias, *self.tier_names])
            raise UnknownModel(f"The model '{model}' does not exist. Available: {names}.",
                               param="model")
        if thresholds is not None and len(thresholds) != len(self.ladder) - 1:
            raise RequestError(f"rung.thresholds needs {len(self.ladder) - 1} values.",
                               param="rung.thresholds")

    async def _score(self, request: ChatRequest) -> tuple[float, str]:
        if getattr(self.scorer, "blocking", True):
            return await asyncio.to_thread(self.scorer.scored, request)
        return self.scorer.scored(request)

    def _fixed_plan(self, model: str, route: RouteDraft, *,
                    pin: str | None) -> list[str] | None:
        """The plan of a request that names its tier (no scoring); None for the alias."""
        if pin is not None:
            route.reason = "pinned"
            return [pin]
        if model != self.config.alias:
            route.reason = "requested"
            return [model]
        return None

    def _sticky_key(self, request: ChatRequest,
                    thresholds: Sequence[float] | None) -> str | None:
        """The conversation key of a request that takes part in stickiness, else None."""
        if self.sticky is None or thresholds is not None:
            return None
        return conversation_key(request)

    async def _routed_plan(self, request: ChatRequest, route: RouteDraft,
                           thresholds: Sequence[float] | None,
                           key: str | None) -> list[str]:
        """The ladder tiers to try for a request to the alias, in order; fills in the
        route's reason, score and start. A later step of a conversation that escalated
        (``key`` remembered) starts no lower than where it escalated to."""
        names = self.ladder
        t0 = time.perf_counter()
        route.score, route.router = await self._score(request)
        route.router_ms = (time.perf_counter() - t0) * 1000
        th = self.config.routing.thresholds if thresholds is None else tuple(thresholds)
        decision = start_tier(route.score, th, n_tiers=len(names))
        if key is not None and self.sticky is not None and read_step(request).continues:
            held = self.sticky.get(key, time.monotonic())
            decision = sticky_start(decision, held, names)
        route.start, route.reason = decision.tier, decision.reason
        plan = names[decision.tier:]
        media = request.modalities()
        if media:  # only tiers that take the request's images, audio or files
            skipped = [n for n in plan if not self._takes(n, media)]
            plan = [n for n in plan if n not in skipped]
            if not plan:  # every tier from the start up cannot: the nearest below can
                plan = [n for n in reversed(names[:decision.tier]) if self._takes(n, media)][:1]
            if skipped:
                route.reason += f"; skipped {', '.join(skipped)} (no {_kinds(media)} input)"
        return plan

    def _takes(self, tier: str, media: frozenset[str]) -> bool:
        t = self.config.tier(tier)
        return t is None or t.takes(media)

    def _check_media(self, tier: str, media: frozenset[str]) -> None:
        if media and not self._takes(tier, media):
            raise RequestError(f"The tier '{tier}' does not take {_kinds(media)} input.",
                               param="messages", code="unsupported_content")

    def _remember(self, key: str | None, route: RouteDraft) -> None:
        """After a reply: if the tier that answered is above the start, the
        conversation's later steps start there."""
        if key is None or self.sticky is None or route.tier not in self.ladder:
            return
        tier = self.ladder.index(route.tier)
        if tier > route.start:
            self.sticky.remember(key, tier, time.monotonic())

    def reply(self, model: str, request: ChatRequest, *, pin: str | None = None,
              thresholds: Sequence[float] | None = None) -> Reply:
        """Answer ``request``: a lazy reply. A request that cannot be routed raises here;
        everything else (scoring included) happens as its chunks are read."""
        self.check(model, pin=pin, thresholds=thresholds)
        media = request.modalities()
        verify = model == self.config.alias and pin is None \
            and not self.config.routing.stream_unverified
        route = RouteDraft(requested=model)
        fixed = self._fixed_plan(model, route, pin=pin)
        if fixed is not None:  # a named tier: straight to the cascade
            self._check_media(fixed[0], media)
            return Reply(route, self.cascade.run(request, route, fixed, verify=verify))
        if media and not any(self._takes(n, media) for n in self.ladder):
            raise RequestError(f"No tier on this gateway takes {_kinds(media)} input: "
                               "configure an upstream tier that does (tier `input`).",
                               param="messages", code="unsupported_content")

        async def routed() -> AsyncGenerator[Chunk, None]:
            key = self._sticky_key(request, thresholds)
            plan = await self._routed_plan(request, route, thresholds, key)
            chunks = self.cascade.run(request, route, plan, verify=verify)
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()
                self._remember(key, route)

        return Reply(route, routed())


def _kinds(media: frozenset[str]) -> str:
    return " or ".join(sorted(media))
