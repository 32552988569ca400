"""LLM-as-judge scoring of a run's answers, with a rubric, and the judge's agreement with
the reference checks where references exist.

The judge is a tier asked "is this answer correct?" (optionally under a rubric); its
P(yes) from the first token's logprobs is the judged score (the judge verifier's logic).
Agreement: accuracy of P(yes) >= 0.5 against the reference verdict, Cohen's kappa, and
the AUC of P(yes) for telling right answers from wrong ones; and the same at a calibrated
cut (the ``min_yes`` a judge verifier would use), chosen on one half of the rows for the
best kappa and measured on the other half, halves swapped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from rung.cascade import Cascade
from rung.types import Answer, ChatRequest, Chunk, Message
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


def _kappa(said: Sequence[bool], truth: Sequence[bool]) -> tuple[float, float | None]:
    """(accuracy, Cohen's kappa) of the judge's calls against the references."""
    n = len(said)
    acc = sum(s == t for s, t in zip(said, truth, strict=True)) / n
    p_yes_rate, p_true = sum(said) / n, sum(truth) / n
    chance = p_yes_rate * p_true + (1 - p_yes_rate) * (1 - p_true)
    return acc, ((acc - chance) / (1 - chance) if chance < 1 else None)


def calibrated(pairs: Sequence[tuple[float, bool]], *, seed: int = 0) -> dict[str, Any]:
    """Accuracy and kappa at a cut on P(yes) chosen on the other half of the rows."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    halves = [[pairs[i] for i in order[: len(order) // 2]],
              [pairs[i] for i in order[len(order) // 2:]]]
    said: list[bool] = []
    truth: list[bool] = []
    cuts = []
    for fit, test in ((halves[0], halves[1]), (halves[1], halves[0])):
        def kappa_at(cut: float, fit: list[tuple[float, bool]] = fit) -> float:
            k = _kappa([p >= cut for p, _ in fit], [c for _, c in fit])[1]
            return -1.0 if k is None else k
        cands = sorted({p for p, _ in fit} | {0.5})
        cut = max(cands, key=lambda c: (kappa_at(c), -abs(c - 0.5)))
        cuts.append(round(cut, 4))
        said += [p >= cut for p, _ in test]
        truth += [c for _, c in test]
    acc, kappa = _kappa(said, truth)
    return {"min_yes_per_half": cuts, "accuracy": round(acc, 4),
            "kappa": round(kappa, 4) if kappa is not None else None,
            "judge_says_correct": round(sum(said) / len(said), 4)}


def agreement(p_yes: Sequence[float | None], correct: Sequence[bool]) -> dict[str, Any]:
    pairs = [(p, c) for p, c in zip(p_yes, correct, strict=True) if p is not None]
    n = len(pairs)
    if n == 0:
        return {"n": 0, "abstained": len(p_yes)}
    said = [p >= 0.5 for p, _ in pairs]
    truth = [c for _, c in pairs]
    acc, kappa = _kappa(said, truth)
    a = auc([p for p, _ in pairs], truth)
    out: dict[str, Any] = {
        "n": n, "abstained": len(p_yes) - n, "accuracy": round(acc, 4),
        "kappa": round(kappa, 4) if kappa is not None else None,
        "auc": round(a, 4) if a is not None else None,
        "judge_says_correct": round(sum(said) / n, 4),
        "reference_correct": round(sum(truth) / n, 4)}
    if n >= 4:
        out["calibrated"] = calibrated(pairs)
    return out
