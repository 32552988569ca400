"""How much a router can learn from one-sided labels, offline: the learners `rung learn`
could use, on the same split as bench/learning_sim.py.

    .venv/bin/python bench/one_sided_labels.py [--requests 3000] [--feedback 0.5]
        [--seeds 1] [--seed 0]

RouteLLM's MMLU + GSM8K outcome tables in ../shared, shuffled (seed 0, one item per
prompt); the first ``--requests`` items are the traffic, the rest the evaluation. The
traffic is labelled as a gateway would label it: each request goes to the weak or the
strong model at random, half of the answers are rated, a tenth of the ratings inverted,
and each rating is about the model that answered. Printed: APGR on the rest for rung's
stacked router and a TF-IDF + logistic regression model trained on the weak side's labels
alone, for the two heads (one per side, as rung learn fits them), and for the same
learners given every traffic item's two-sided outcomes (what no gateway sees). With
``--seeds N`` the whole draw (split, routing, ratings) is repeated for seeds 0..N-1 and
each cell is the mean, with the range.
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

import numpy as np

from rung.routing.data import Outcome, load_many
from rung.routing.heads import train_heads
from rung.routing.learned import train_router
from rung.routing.metrics import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"


def one_draw(items: list[Outcome], requests: int, feedback: float,
             seed: int) -> list[tuple[str, int, float]]:
    items = list(items)
    random.Random(seed).shuffle(items)
    traffic, rest = items[:requests], items[requests:]
    prompts = [o.prompt for o in rest]

    def apgr(scores: object) -> float:
        return evaluate(np.asarray(scores, dtype=np.float64), [o.weak_correct for o in rest],
                        [o.strong_correct for o in rest]).apgr

    rng = random.Random(seed + 1)
    weak_side: list[tuple[str, bool]] = []
    strong_side: list[tuple[str, bool]] = []
    for o in traffic:
        to_weak = rng.random() < 0.5
        if rng.random() < feedback:
            ok = o.weak_correct if to_weak else o.strong_correct
            if rng.random() < 0.1:
                ok = not ok
            (weak_side if to_weak else strong_side).append((o.prompt, ok))
    one_sided = [Outcome(p, ok, True, "traffic") for p, ok in weak_side]
    return [
        ("stacked router, weak side's labels", len(weak_side),
         apgr(train_router(one_sided, use_embeddings=False).score_batch(prompts))),
        ("TF-IDF + LR, weak side's labels", len(weak_side),
         apgr(train_heads(weak_side).score_batch(prompts))),
        ("heads: TF-IDF + length + LR per side (rung learn)", len(weak_side) + len(strong_side),
         apgr(train_heads(weak_side, strong_side).score_batch(prompts))),
        ("heads, every item's two outcomes (no gateway sees these)", 2 * len(traffic),
         apgr(train_heads([(o.prompt, o.weak_correct) for o in traffic],
                          [(o.prompt, o.strong_correct) for o in traffic]).score_batch(prompts))),
        ("stacked router, every item's two outcomes", len(traffic),
         apgr(train_router(traffic, use_embeddings=False).score_batch(prompts))),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--feedback", type=float, default=0.5, help="share of answers rated")
    ap.add_argument("--seeds", type=int, default=1, help="repeat for seeds 0..N-1")
    ap.add_argument("--seed", type=int, default=0, help="the seed of a single draw")
    args = ap.parse_args()
    items = list({o.prompt: o for o in load_many(DATA, ("mmlu", "gsm8k"))}.values())
    seeds = range(args.seeds) if args.seeds > 1 else [args.seed]
    draws = [one_draw(items, args.requests, args.feedback, s) for s in seeds]
    print(f"{args.requests} traffic items, {len(items) - args.requests} held out, "
          f"{args.feedback:.0%} rated, seeds {list(seeds)}\n")
    print("| learner | labels | APGR on the rest |")
    print("|---|---|---|")
    for i, (name, _, _) in enumerate(draws[0]):
        vals = [d[i][2] for d in draws]
        n = round(statistics.mean(d[i][1] for d in draws))
        cell = f"{statistics.mean(vals):.4f}" + (
            f" ({min(vals):.4f}-{max(vals):.4f})" if len(vals) > 1 else "")
        print(f"| {name} | {n} | {cell} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
