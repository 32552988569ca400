"""Routers out of domain: trained on one benchmark of ../shared, scored on the other.

    .venv/bin/python bench/ood_bench.py

RouteLLM's GSM8K and MMLU outcome tables (dev split): each router is trained on one and its
APGR measured on the other, against the floor the issue names (TF-IDF word 1-2-grams +
logistic regression on the 3-class gain, trained on the same data): rung's stacked router
(`rung router train`, no embeddings), and the heads router (`rung learn`'s, given both
sides' outcomes here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rung.routing.data import Outcome, load_outcomes
from rung.routing.heads import train_heads
from rung.routing.learned import train_router
from rung.routing.metrics import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"


def apgr(scores: object, items: list[Outcome]) -> float:
    return round(evaluate(np.asarray(scores, dtype=np.float64), [o.weak_correct for o in items],
                          [o.strong_correct for o in items]).apgr, 4)


def tfidf_floor(train: list[Outcome], test: list[Outcome]) -> object:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    x = vec.fit_transform([o.prompt for o in train])
    lr = LogisticRegression(max_iter=3000).fit(x, [o.gain for o in train])
    p = lr.predict_proba(vec.transform([o.prompt for o in test]))
    cls = list(lr.classes_)
    return p[:, cls.index(1)] - (p[:, cls.index(-1)] if -1 in cls else 0.0)


def main() -> int:
    sets = {b: load_outcomes(DATA, b) for b in ("gsm8k", "mmlu")}
    print("| trained on -> scored on | TF-IDF + LR floor | stacked router | heads router |")
    print("|---|---|---|---|")
    for src, dst in (("gsm8k", "mmlu"), ("mmlu", "gsm8k")):
        train, test = sets[src], sets[dst]
        prompts = [o.prompt for o in test]
        stacked = train_router(train, use_embeddings=False).score_batch(prompts)
        heads = train_heads([(o.prompt, o.weak_correct) for o in train],
                            [(o.prompt, o.strong_correct) for o in train]).score_batch(prompts)
        print(f"| {src} -> {dst} | {apgr(tfidf_floor(train, test), test)} | "
              f"{apgr(stacked, test)} | {apgr(heads, test)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
