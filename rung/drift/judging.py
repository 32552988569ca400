"""Judged quality on a sample of live traffic: a configured tier is asked, in the
background, whether a sampled answer is right (its P(yes) is the score, as the judge
verifier computes it); the verdict is added to the trace as ``route["judged"]`` and is a
quality-drift signal. Bounded: at most ``max_in_flight`` judgements run at once; a
sampled request beyond that is skipped, never queued."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random

from rung.cascade import Cascade
from rung.store.base import TraceStore
from rung.store.trace import Trace
from rung.types import Answer, ChatRequest, Chunk, Judged
from rung.verify.judge import JudgeVerifier

log = logging.getLogger("rung.drift")


class SampledJudge:
    def __init__(self, cascade: Cascade, store: TraceStore, *, tier: str, rate: float,
                 seed: int = 0, max_in_flight: int = 4) -> None:
        self._cascade, self._store = cascade, store
        self._judge = JudgeVerifier(tier=tier, min_yes=0.5)
        self._rate = rate
        self._rng = random.Random(seed)
        self._max = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.judged = 0

    def maybe(self, trace: Trace) -> None:
        """Called for every finished request; judges a sample of the answered ones."""
        if (trace.status != "ok" or not trace.messages or trace.response is None
                or self._rng.random() >= self._rate or len(self._tasks) >= self._max):
            return
        task = asyncio.create_task(self._judge_one(dataclasses.replace(trace)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge_one(self, trace: Trace) -> None:
        assert trace.messages is not None and trace.response is not None
        request = ChatRequest(messages=trace.conversation)
        answer = Answer(tier=trace.tier or "", chunks=[Chunk(text=trace.response)])
        try:
            verdict = await self._judge.verify(request, answer, self._cascade.generate)
        except Exception:
            log.warning("judging trace %s failed", trace.id, exc_info=True)
            return
        trace.route = {**trace.route, "judged": Judged(verdict, self._judge.tier or "?").as_dict()}
        await self._store.write(trace)
        self.judged += 1

    async def drain(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
