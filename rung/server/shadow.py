"""Shadow comparisons (``routing.shadow``): labels from traffic without asking anyone.

A sampled share of the requests answered below the shadow tier (the top ladder tier by
default) is answered again by that tier, in the background, after the client has its
answer: never returned, never delaying anything, at most ``max_in_flight`` at once (a
sampled request past that is skipped and counted, never queued). When both answers chose
a letter of a multiple-choice question, or else both end on a number (the readings
:mod:`rung.verify.final` gives graders and verifiers), whether they agree is stored as
feedback on the request's trace, with source ``shadow`` (score 1 when they agree): a
paired outcome like the benchmark tables', which ``rung learn`` reads as labels
(:mod:`rung.learning`). Other answers are counted as not
comparable and store nothing. The shadow's cost is counted apart
(``rung_shadow_cost_total``), never in the request's.

Downward (``routing.shadow.down``): a sampled share of the requests answered above the
first ladder tier, which never tried the first tier, is answered again by the first tier
and compared the same way, stored with source ``shadow_first``: the only labels about the
first tier on the prompts the router in use sends past it (:mod:`rung.learning`). The two
directions share ``max_in_flight``; a request is shadowed at most once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from rung.cascade import Cascade
from rung.config import Config, CostConfig
from rung.cost import cost_of
from rung.metrics import Metrics
from rung.store.base import TraceStore
from rung.store.feedback import SHADOW, SHADOW_FIRST, Feedback
from rung.store.trace import Trace
from rung.types import ChatRequest, Message
from rung.verify.final import canonical, final_choice, final_value

log = logging.getLogger("rung.shadow")


def final_pair(answered: str, shadow: str) -> tuple[str, str] | None:
    """What the two answers ended on, read the same way: the letters both chose, else the
    numbers both ended on; None when they cannot be compared."""
    letters = final_choice(answered), final_choice(shadow)
    if letters[0] is not None and letters[1] is not None:
        return letters[0], letters[1]
    values = final_value(answered), final_value(shadow)
    if values[0] is not None and values[1] is not None:
        return canonical(values[0]), canonical(values[1])
    return None


def _reached(trace: Trace, tier: str) -> bool:
    return any(a.get("tier") == tier for a in trace.route.get("attempts") or ())


class Shadow:
    def __init__(self, config: Config, cascade: Cascade, store: TraceStore, metrics: Metrics,
                 *, seed: int = 0) -> None:
        shadow = config.routing.shadow
        assert shadow is not None
        ladder = [t.name for t in config.ladder_tiers]
        self.tier = shadow.tier or ladder[-1]
        self.first = ladder[0]
        self._costs: dict[str, CostConfig] = {t.name: t.cost for t in config.tiers}
        # the tiers whose answers are shadowed: every ladder tier below the shadow's
        self._below = set(ladder[:ladder.index(self.tier)]) if self.tier in ladder \
            else set(ladder)
        self._above_first = set(ladder[1:])
        self._share, self._down, self._max = shadow.share, shadow.down, shadow.max_in_flight
        self._cascade, self._store, self._metrics = cascade, store, metrics
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()

    def _pick(self, trace: Trace) -> tuple[str, str] | None:
        """The tier that shadows ``trace`` and the source its label gets, if sampled."""
        if trace.tier in self._below and self._share and self._rng.random() < self._share:
            return self.tier, SHADOW
        if (trace.tier in self._above_first and self._down and not _reached(trace, self.first)
                and self._rng.random() < self._down):
            return self.first, SHADOW_FIRST
        return None

    def maybe(self, trace: Trace) -> None:
        """Called for every finished request; shadows a sample of those it applies to."""
        if trace.status != "ok" or not trace.messages or trace.response is None:
            return
        picked = self._pick(trace)
        if picked is None:
            return
        if len(self._tasks) >= self._max:
            self._metrics.shadows.labels("skipped").inc()
            return
        task = asyncio.create_task(self._compare(trace.id, trace.conversation, trace.response,
                                                 *picked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compare(self, trace_id: str, messages: tuple[Message, ...],
                       answered: str, tier: str, source: str) -> None:
        request = ChatRequest(messages=messages, temperature=0.0)
        try:
            answer = await self._cascade.generate(tier, request)
        except Exception:
            log.warning("shadow of %s on %s failed", trace_id, tier, exc_info=True)
            self._metrics.shadows.labels("failed").inc()
            return
        seconds = answer.compute_s if answer.compute_s is not None else answer.seconds
        self._metrics.shadow_cost.inc(cost_of(self._costs[tier], answer.usage, seconds))
        said = final_pair(answered, answer.text)
        if said is None:
            self._metrics.shadows.labels("not_comparable").inc()
            return
        mine, theirs = said
        agree = mine == theirs
        self._metrics.shadows.labels("agree" if agree else "disagree").inc()
        fb = Feedback(trace_id=trace_id, score=1.0 if agree else 0.0, time=time.time(),
                      comment=f"{tier} ended on {theirs}, the answer on {mine}",
                      source=source)
        try:
            await asyncio.to_thread(self._store.add_feedback, fb)
        except Exception:
            log.warning("storing the shadow label of %s failed", trace_id, exc_info=True)

    async def close(self) -> None:
        """Stop the shadows under way: they are best effort, and a shutdown waits for none."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
