#!/usr/bin/env python3
"""bench/learning_sim.py's loop without the server, fast enough to repeat over seeds.

    .venv/bin/python bench/learning_replica.py --seeds 10
    .venv/bin/python bench/learning_replica.py --seeds 10 --c 1.0 --shape-weight 0
    .venv/bin/python bench/learning_replica.py --seeds 10 --explore 0.1
    .venv/bin/python bench/learning_replica.py --seeds 10 --first-seed 10
    .venv/bin/python bench/learning_replica.py --seeds 10 --shadow-down 1.0
    .venv/bin/python bench/learning_replica.py --seeds 10 --promotion recent --paired 0

The same data and split as the simulation (RouteLLM's MMLU + GSM8K outcomes in ../shared,
shuffled by the seed; the first ``--requests`` are the traffic, the rest the evaluation).
Each window the router in use (the heuristic until a promotion) sends the prompts scoring
at or above the previous window's median to the strong model (an ``--explore`` share goes
to either at random instead); every answer is rated by the model that gave it, a
``--flip`` share inverted. With ``--shadow-down SHARE`` that share of the strong answers is
also answered by the weak model and compared (``routing.shadow.down``), labelled as
``rung.learning.labels`` reads it (``--down-rule``; a rated answer and its comparison are
a paired outcome unless ``--paired 0``); ``--shadow-up`` the reverse. After each window a
candidate heads router is compared with the router in use by ``rung.learning``'s rule, as
`rung learn` does (``--promotion crossfit``: cross-fitted scores on the labels the router
in use never saw; ``recent``: the rule before 2026-12-04, a candidate fitted on the older
labels and tested on the most recent 20%); a promotion is fitted on every label. Printed per seed and on
average: APGR on the rest of the router in use at the end and of the last router fitted
on all labels, and which windows promoted (P). ``--c`` and ``--shape-weight`` override
the heads router's regularisation and surface-feature scale, to compare settings.

It differs from the simulation in what a real gateway adds (HTTP, traces, the first
window's threshold from the window itself), so its numbers compare settings with each
other, not with the simulation's.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from rung import learning
from rung.learning import Label
from rung.routing import heads
from rung.routing.data import Outcome, load_many
from rung.routing.heads import HeadsRouter, train_heads
from rung.routing.memo import remembered
from rung.routing.metrics import evaluate
from rung.routing.scorers import HeuristicScorer
from rung.server.shadow import final_pair
from rung.types import ChatRequest, Message

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"


def _request(prompt: str) -> ChatRequest:
    return ChatRequest(messages=(Message("user", prompt),))


def _scores(router: HeadsRouter | None, prompts: list[str]) -> np.ndarray:
    if router is None:
        h = HeuristicScorer()
        return np.array([h.score(_request(p)) for p in prompts])
    return router.score_batch(prompts)


def replies(o: Outcome) -> tuple[str, str]:
    """The weak and the strong model's answers as the simulation's upstreams give them:
    GSM8K's recorded answers; for MMLU (correctness only recorded) a stand-in "The answer
    is X." per prompt, the right letter when the model was right, else one of the three
    others (per prompt and model: two wrong answers agree a third of the time)."""
    if o.benchmark == "gsm8k":
        return o.weak_response or "(recorded answer)", o.strong_response or "(recorded answer)"
    digest = hashlib.sha256(o.prompt.encode()).digest()
    right = digest[0] % 4
    weak, strong = (f"The answer is {'ABCD'[right if ok else (right + 1 + digest[k] % 3) % 4]}."
                    for k, ok in ((1, o.weak_correct), (2, o.strong_correct)))
    return weak, strong


def agree(o: Outcome) -> bool | None:
    """Whether the two answers agree, read as a shadow comparison reads them (None: they
    cannot be compared)."""
    pair = final_pair(*replies(o))
    return None if pair is None else pair[0] == pair[1]


def _fit(found: list[Label]) -> HeadsRouter:
    return train_heads(learning.pairs(found, "first"), learning.pairs(found, "next"))


def one_seed(items: list[Outcome], seed: int, args: argparse.Namespace
             ) -> tuple[float, float, str]:
    items = list(items)
    random.Random(seed).shuffle(items)
    traffic, rest = items[:args.requests], items[args.requests:]
    rng = random.Random(seed + 1)
    found: list[Label] = []
    router: HeadsRouter | None = None
    trained_until = float("-inf")  # the router in use saw the labels up to this time
    threshold: float | None = None
    log = ""
    for w0 in range(0, len(traffic), args.window):
        window = traffic[w0:w0 + args.window]
        scores = _scores(router, [o.prompt for o in window])
        threshold = float(np.median(scores)) if threshold is None else threshold
        for o, score in zip(window, scores, strict=True):
            strong = bool(score >= threshold)
            if rng.random() < args.explore:
                strong = rng.random() < 0.5
            ok = o.strong_correct if strong else o.weak_correct
            if rng.random() < args.flip:
                ok = not ok
            t = float(len(found))
            rated = Label(str(t), t, _request(o.prompt), ok, "feedback",
                          "next" if strong else "first")
            same = agree(o)
            shadow: Label | None = None
            if strong and args.shadow_down and rng.random() < args.shadow_down \
                    and same is not None:
                first_ok = (ok and same) if args.down_rule == "and" else \
                    learning.shadowed_first(None if args.down_rule == "unrated"
                                            else [float(ok)], [float(same)])
                if first_ok is not None:
                    shadow = Label(str(t), t + 0.5, _request(o.prompt), first_ok, "shadow",
                                   "first", other=ok)
            if not strong and args.shadow_up and rng.random() < args.shadow_up \
                    and same is not None:  # as rung.learning reads a rated, shadowed answer
                shadow = Label(str(t), t + 0.5, _request(o.prompt), ok == same, "shadow",
                               "next", other=ok)
            if shadow is not None:  # both sides known: a paired outcome, or two labels
                rated = replace(rated, other=shadow.ok if args.paired else None)
                shadow = replace(shadow, other=ok if args.paired else None)
            found += [rated] if shadow is None else [rated, shadow]
        threshold = float(np.median(scores))
        if args.promotion == "crossfit":
            unseen = [i for i, lb in enumerate(found) if lb.time > trained_until]
            if sum(found[i].side == "first" for i in unseen) < 2 * learning.MIN_HOLDOUT:
                log += "."
                continue
            oof = learning.cross_fitted(found, _fit, seed=seed)
            recent = [found[i] for i in unseen]
            new = oof[unseen] if oof is not None else None
        else:
            # the rule before cross-fitting: the most recent 20% held back
            on_first = [lb for lb in found if lb.side == "first"]
            k = max(learning.MIN_HOLDOUT, round(0.2 * len(on_first)))
            older, held = on_first[:-k], on_first[-k:]
            if len(older) < 2 * learning.MIN_HOLDOUT:
                log += "."
                continue
            recent = [lb for lb in found if lb.time >= held[0].time]
            candidate = _fit([lb for lb in found if lb.time < held[0].time])
            new = candidate.score_batch([lb.prompt for lb in recent])
        low = -1.0 if new is None else learning.paired_interval(
            new, _scores(router, [lb.prompt for lb in recent]), recent, seed=0)[1]
        if low > 0:
            trained_until = found[-1].time
            router = _fit(found)
            threshold = float(np.median(router.score_batch([o.prompt for o in window])))
        log += "P" if low > 0 else "-"
    prompts = [o.prompt for o in rest]

    def apgr(scores: np.ndarray) -> float:
        return evaluate(scores, [o.weak_correct for o in rest],
                        [o.strong_correct for o in rest]).apgr

    return apgr(_scores(router, prompts)), apgr(_fit(found).score_batch(prompts)), log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--flip", type=float, default=0.1)
    ap.add_argument("--explore", type=float, default=0.0, help="share routed at random")
    ap.add_argument("--shadow-down", type=float, default=0.0,
                    help="share of strong answers the weak model also gives, compared")
    ap.add_argument("--down-rule", choices=("rated", "unrated", "and"), default="rated",
                    help="what a shadow-down comparison says about the weak model: rated = "
                    "rung.learning's rule with the strong answer's rating; unrated = its rule "
                    "without one (agreed: right); and = right only when rated right and agreed")
    ap.add_argument("--shadow-up", type=float, default=0.0,
                    help="share of weak answers the strong model also gives, compared")
    ap.add_argument("--promotion", choices=("crossfit", "recent"), default="crossfit",
                    help="crossfit (rung learn's rule): cross-fitted scores on every label "
                    "the router in use never saw; recent (the rule before 2026-12-04): the "
                    "candidate fitted on older labels, tested on the most recent 20%%")
    ap.add_argument("--paired", type=int, default=1,
                    help="1: a rated answer and its shadow count as a paired outcome in the "
                    "promotion test (rung.learning); 0: as two one-sided labels")
    ap.add_argument("--seeds", type=int, default=5, help="how many seeds")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed")
    ap.add_argument("--c", type=float, default=None, help="override heads.C")
    ap.add_argument("--implied-weight", type=float, default=None,
                    help="override heads.IMPLIED_WEIGHT (0: no implied labels)")
    ap.add_argument("--shape-weight", type=float, default=None,
                    help="override heads.SHAPE_WEIGHT (0: no surface features)")
    args = ap.parse_args()
    if args.c is not None:
        heads.C = args.c
    if args.shape_weight is not None:
        heads.SHAPE_WEIGHT = args.shape_weight
    if args.implied_weight is not None:
        heads.IMPLIED_WEIGHT = args.implied_weight
    items = list({o.prompt: o for o in load_many(DATA, ("mmlu", "gsm8k"))}.values())
    print(f"heads C {heads.C}, surface-feature weight {heads.SHAPE_WEIGHT}, implied-label "
          f"weight {heads.IMPLIED_WEIGHT}, explore "
          f"{args.explore}; {args.requests} requests, windows of {args.window}")
    in_use, last = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with remembered():  # each prompt tokenised once per seed, as in rung learn
            a, b, log = one_seed(items, seed, args)
        in_use.append(a)
        last.append(b)
        print(f"seed {seed}: router in use {a:.4f}, last fitted {b:.4f}  windows {log}",
              flush=True)
    print(f"mean over {args.seeds} seeds: router in use {statistics.mean(in_use):.4f} "
          f"(min {min(in_use):.4f}), last fitted {statistics.mean(last):.4f} "
          f"(min {min(last):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
