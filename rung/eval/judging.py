"""LLM-as-judge scoring of a run's answers, with a rubric, and the judge's agreement with
the reference checks where references exist.

The judge is a tier asked "is this answer correct?" (optionally under a rubric); its
P(yes) from the first token's logprobs is the judged score (the judge verifier's logic).
Agreement: accuracy of P(yes) >= 0.5 against the reference verdict, Cohen's kappa, and
the AUC of P(yes) for telling right answers from wrong ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from rung.backends.base import ChatRequest, Chunk, Message
from rung.cascade import Cascade
from rung.verify.base import Answer
from rung.verify.judge import JudgeVerifier


async def judge_rows(cascade: Cascade, rows: Sequence[dict[str, Any]], *, tier: str,
                     rubric: str | None, concurrency: int = 1) -> list[float | None]:
    """P(yes) per row (None when the judge said neither yes nor no)."""
    judge = JudgeVerifier(tier=tier, min_yes=0.5, rubric=rubric)
    sem = asyncio.Semaphore(concurrency)

    async def one(row: dict[str, Any]) -> float | None:
        request = ChatRequest(messages=(Message("user", row["question"]),))
        answer = Answer(tier=row.get("tier") or "", chunks=[Chunk(text=row["answer"])])
        async with sem:
            verdict = await judge.verify(request, answer, cascade.generate)
        return None if "abstain" in verdict.detail else 1.0 - verdict.score

    return list(await asyncio.gather(*(one(r) for r in rows)))


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(a right answer scores above a wrong one), ties half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def agreement(p_yes: Sequence[float | None], correct: Sequence[bool]) -> dict[str, Any]:
    pairs = [(p, c) for p, c in zip(p_yes, correct, strict=True) if p is not None]
    n = len(pairs)
    if n == 0:
        return {"n": 0, "abstained": len(p_yes)}
    said = [p >= 0.5 for p, _ in pairs]
    truth = [c for _, c in pairs]
    acc = sum(s == t for s, t in zip(said, truth, strict=True)) / n
    p_yes_rate, p_true = sum(said) / n, sum(truth) / n
    chance = p_yes_rate * p_true + (1 - p_yes_rate) * (1 - p_true)
    kappa = (acc - chance) / (1 - chance) if chance < 1 else None
    return {"n": n, "abstained": len(p_yes) - n, "accuracy": round(acc, 4),
            "kappa": round(kappa, 4) if kappa is not None else None,
            "auc": (round(a, 4) if (a := auc([p for p, _ in pairs], truth)) is not None
                    else None),
            "judge_says_correct": round(p_yes_rate, 4), "reference_correct": round(p_true, 4)}
