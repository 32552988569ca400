"""How much a router can learn from one-sided labels, offline: the learners `rung learn`
could use, on the same split as bench/learning_sim.py.

    .venv/bin/python bench/one_sided_labels.py [--requests 3000] [--seed 0]

RouteLLM's MMLU + GSM8K outcome tables in ../shared, shuffled (seed 0, one item per
prompt); the first ``--requests`` items are the traffic, the rest the evaluation. The
traffic is labelled as a gateway would label it: each request goes to the weak or the
strong model at random, half of the answers are rated, a tenth of the ratings inverted,
and each rating is about the model that answered. Printed: APGR on the rest for rung's
stacked router and a TF-IDF + logistic regression model trained on the weak side's labels
alone, for the two heads (one per side, as rung learn fits them), and for the same
learners given every traffic item's two-sided outcomes (what no gateway sees).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from rung.routing.data import Outcome, load_many
from rung.routing.heads import train_heads
from rung.routing.learned import train_router
from rung.routing.metrics import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    items = list({o.prompt: o for o in load_many(DATA, ("mmlu", "gsm8k"))}.values())
    random.Random(args.seed).shuffle(items)
    traffic, rest = items[:args.requests], items[args.requests:]
    prompts = [o.prompt for o in rest]

    def apgr(scores: object) -> float:
        return round(evaluate(np.asarray(scores, dtype=np.float64),
                              [o.weak_correct for o in rest],
                              [o.strong_correct for o in rest]).apgr, 4)

    rng = random.Random(args.seed + 1)
    weak_side: list[tuple[str, bool]] = []
    strong_side: list[tuple[str, bool]] = []
    for o in traffic:
        to_weak = rng.random() < 0.5
        if rng.random() < 0.5:
            ok = o.weak_correct if to_weak else o.strong_correct
            if rng.random() < 0.1:
                ok = not ok
            (weak_side if to_weak else strong_side).append((o.prompt, ok))
    one_sided = [Outcome(p, ok, True, "traffic") for p, ok in weak_side]
    rows = [
        ("stacked router, weak side's labels", len(weak_side),
         apgr(train_router(one_sided, use_embeddings=False).score_batch(prompts))),
        ("TF-IDF + LR, weak side's labels", len(weak_side),
         apgr(train_heads(weak_side).score_batch(prompts))),
        ("heads: TF-IDF + LR per side (rung learn)", len(weak_side) + len(strong_side),
         apgr(train_heads(weak_side, strong_side).score_batch(prompts))),
        ("heads, every item's two outcomes (no gateway sees these)", 2 * len(traffic),
         apgr(train_heads([(o.prompt, o.weak_correct) for o in traffic],
                          [(o.prompt, o.strong_correct) for o in traffic]).score_batch(prompts))),
        ("stacked router, every item's two outcomes", len(traffic),
         apgr(train_router(traffic, use_embeddings=False).score_batch(prompts))),
    ]
    print(f"{len(traffic)} traffic items, {len(rest)} held out\n")
    print("| learner | labels | APGR on the rest |")
    print("|---|---|---|")
    for name, n, a in rows:
        print(f"| {name} | {n} | {a} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
