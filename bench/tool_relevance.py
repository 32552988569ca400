#!/usr/bin/env python
"""How well ``tool_relevance`` tells a tool that fits the question from one that does
not, on the BFCL dev split, without running any model.

Right calls: (question, each ground-truth function) of the categories with answers.
Irrelevant calls: (question, each offered function) of irrelevance and live_irrelevance,
where nothing offered fits. Prints the AUC of each statistic, then the share of each
category's calls rejected at thresholds chosen by 5-fold cross-validation grouped by
item (folds by sha1 of the id; IDF from the training folds' tools only; the threshold:
the highest that rejects at most the target share of the training folds' right calls),
then the threshold that choice makes on the whole split, and the verifier's cost.

    .venv/bin/python bench/tool_relevance.py [--data ../shared/data/bfcl]
    .venv/bin/python bench/tool_relevance.py --write-vocab   # rung/verify/relevance_vocab.py

Takes about 15 s on 2 busy cores (3,463 pairs).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rung.eval.bfcl import NO_CALL, Case, load, tool_name
from rung.types import Answer, ChatRequest, Chunk, ToolCallDelta, ToolSpec
from rung.verify.relevance import (
    DEFAULT_MIN_SCORE,
    ToolRelevanceVerifier,
    Vocabulary,
    readable,
    relevance,
    tool_words,
    words,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bfcl"
VOCAB = Path(__file__).resolve().parents[1] / "rung" / "verify" / "relevance_vocab.py"
RIGHT = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
         "live_multiple", "live_parallel", "live_parallel_multiple")
FOLDS = 5
TARGETS = (0.02, 0.03, 0.05)


@dataclass(frozen=True)
class Pair:
    item: str
    category: str
    question: str
    tool: ToolSpec
    right: bool

    @property
    def fold(self) -> int:
        return int(hashlib.sha1(self.item.encode()).hexdigest(), 16) % FOLDS


def pairs_of(cases: Sequence[Case]) -> list[Pair]:
    out = []
    for c in cases:
        tools = {t.name: t for t in c.tools}
        if c.category in RIGHT:
            called = sorted({tool_name(n) for call in c.ground_truth for n in call})
            out += [Pair(c.id, c.category, c.question, tools[n], True)
                    for n in called if n in tools]
        elif c.category in NO_CALL:
            out += [Pair(c.id, c.category, c.question, t, False) for t in c.tools]
    return out


# A statistic: (question, tool, vocabulary) -> score, None when it abstains (accepted).
Statistic = Callable[[str, ToolSpec, Vocabulary], "float | None"]


def overlap(question: str, tool: ToolSpec, vocabulary: Vocabulary) -> float | None:
    """Shared word stems, counted (no vocabulary)."""
    return float(len(words(question) & tool_words(tool))) if readable(question) else None


STATISTICS: dict[str, Statistic] = {"idf": relevance, "overlap": overlap}


def auc(scores: Sequence[float], right: Sequence[bool]) -> float:
    """P(a right call scores above an irrelevant one), ties half (Mann-Whitney)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            j += 1
        for k in range(i, j):
            ranks[order[k]] = (i + j + 1) / 2
        i = j
    n_pos = sum(right)
    n_neg = len(right) - n_pos
    rank_sum = sum(r for r, y in zip(ranks, right, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def threshold(right_scores: Sequence[float], target: float) -> float:
    """The threshold that rejects (scores below it) at most ``target`` of
    ``right_scores``, as high as that allows: midway between the lowest score it must
    accept and the one below, so ties at that score (one shared word weighs the same in
    many pairs) all stay accepted."""
    ordered = sorted(right_scores)
    allowed = min(int(target * len(ordered)), len(ordered) - 1)  # this many may fall below
    low = ordered[allowed - 1] if allowed else ordered[0]
    return (low + ordered[allowed]) / 2


def scores(pairs: Sequence[Pair], stat: Statistic, vocabulary: Vocabulary) -> list[float]:
    """Each pair's score; an abstention scores +inf (always accepted)."""
    out = []
    for p in pairs:
        s = stat(p.question, p.tool, vocabulary)
        out.append(float("inf") if s is None else s)
    return out


def held_out(pairs: Sequence[Pair], stat: Statistic) -> list[tuple[list[float],
                                                                  list[float]]]:
    """Per fold: the training folds' right calls' scores (IDF from the training folds'
    tools only) and the held-out fold's scores, in ``pairs`` order."""
    out = []
    for fold in range(FOLDS):
        train = [p for p in pairs if p.fold != fold]
        vocabulary = Vocabulary.of(p.tool for p in train)
        right = [s for s, p in zip(scores(train, stat, vocabulary), train, strict=True)
                 if p.right]
        out.append((right, scores([p for p in pairs if p.fold == fold], stat, vocabulary)))
    return out


def cross_validated(pairs: Sequence[Pair], folds: Sequence[tuple[list[float], list[float]]],
                    target: float) -> tuple[dict[str, float], list[float]]:
    """Share rejected per category (and 'right', all right calls) on held-out folds at
    thresholds chosen on the training folds for ``target``, and those thresholds."""
    rejected: dict[str, list[bool]] = {}
    chosen = []
    for fold, (right, test_scores) in enumerate(folds):
        t = threshold(right, target)
        chosen.append(t)
        test = [p for p in pairs if p.fold == fold]
        for s, p in zip(test_scores, test, strict=True):
            rejected.setdefault(p.category, []).append(s < t)
            if p.right:
                rejected.setdefault("right", []).append(s < t)
    return {k: sum(v) / len(v) for k, v in rejected.items()}, chosen


def cost_us(pairs: Sequence[Pair], n: int = 500) -> float:
    """Mean microseconds of one ``verify`` (one call, tools cached as in an agent)."""
    verifier = ToolRelevanceVerifier()
    from rung.types import Message

    jobs = []
    for p in pairs[:n]:
        request = ChatRequest(messages=[Message("user", p.question)], tools=[p.tool])
        answer = Answer("t", [Chunk(tool_calls=(ToolCallDelta(0, "c", p.tool.name, "{}"),))])
        jobs.append((request, answer))

    async def never(tier: str, request: ChatRequest) -> Answer:
        raise AssertionError

    async def run() -> float:
        for request, answer in jobs:  # warm the tool cache
            await verifier.verify(request, answer, never)
        start = time.perf_counter()
        for request, answer in jobs:
            await verifier.verify(request, answer, never)
        return (time.perf_counter() - start) / len(jobs) * 1e6

    return asyncio.run(run())


def write_vocab(pairs: Sequence[Pair], path: Path) -> None:
    vocabulary = Vocabulary.of(p.tool for p in pairs)
    lines = [('"""Generated by `bench/tool_relevance.py --write-vocab` from the BFCL dev '
             "split's\ntool texts: the number of distinct tools, and for each word stem in "
             'at least 3 of them,\nhow many. Do not edit."""\n'),
             f"TOOLS = {vocabulary.tools}", "DF: dict[str, int] = {"]
    line = "   "
    for word, n in vocabulary.df.items():
        item = f" {word!r}: {n},"
        if len(line) + len(item) > 95:
            lines.append(line)
            line = "   "
        line += item
    lines += [line, "}", ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}: {vocabulary.tools} tools, {len(vocabulary.df)} stems")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--write-vocab", action="store_true")
    args = parser.parse_args()
    cases, digest = load(args.data)
    pairs = pairs_of(cases)
    if args.write_vocab:
        write_vocab(pairs, VOCAB)
        return
    negatives = [c for c in NO_CALL if any(p.category == c for p in pairs)]
    print(f"BFCL dev {digest[:12]}: {sum(p.right for p in pairs)} right calls, "
          + ", ".join(f"{sum(p.category == c for p in pairs)} {c}" for c in negatives))
    vocabulary = Vocabulary.of(p.tool for p in pairs)
    print(f"\nAUC (whole split; IDF from it)   {'all':>7} "
          + " ".join(f"{c:>16}" for c in negatives) + f" {'Latin only':>11}")
    for name, stat in STATISTICS.items():
        s = scores(pairs, stat, vocabulary)
        right = [p.right for p in pairs]
        cells = []
        for c in negatives:
            keep = [i for i, p in enumerate(pairs) if p.right or p.category == c]
            cells.append(auc([s[i] for i in keep], [right[i] for i in keep]))
        latin = [i for i, x in enumerate(s) if x != float("inf")]
        print(f"  {name:<30} {auc(s, right):7.3f} " + " ".join(f"{a:16.3f}" for a in cells)
              + f" {auc([s[i] for i in latin], [right[i] for i in latin]):11.3f}")
    cats = ["right", *negatives, *RIGHT]
    print(f"\nrejected, {FOLDS}-fold CV by item    "
          + " ".join(f"{c.replace('parallel', 'par'):>10.10}" for c in cats) + "  thresholds")
    for name, stat in STATISTICS.items():
        folds = held_out(pairs, stat)
        for target in TARGETS:
            rates, chosen = cross_validated(pairs, folds, target)
            print(f"  {name:<8} target {target:4.0%}        "
                  + " ".join(f"{rates.get(c, float('nan')):10.1%}" for c in cats)
                  + "  " + " ".join(f"{t:.2f}" for t in chosen))
    print("\nthe same choice on the whole split (idf):")
    s = scores(pairs, relevance, vocabulary)
    for target in TARGETS:
        t = threshold([x for x, p in zip(s, pairs, strict=True) if p.right], target)
        print(f"  target {target:4.0%}: min_score {t:.3f}")
    d = DEFAULT_MIN_SCORE
    shipped = {c: sum(x < d for x, p in zip(s, pairs, strict=True) if p.category == c)
               / sum(p.category == c for p in pairs) for c in negatives}
    right_rej = sum(x < d for x, p in zip(s, pairs, strict=True) if p.right) / sum(
        p.right for p in pairs)
    print(f"  default {d}: right calls rejected {right_rej:.1%}, "
          + ", ".join(f"{c} {r:.1%}" for c, r in shipped.items()) + " (in-sample)")
    print(f"\ncost: {cost_us(pairs):.0f} us per verify (one call, tool words cached)")


if __name__ == "__main__":
    main()
