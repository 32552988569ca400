"""Out-of-domain detection and fallback: a router trained on one benchmark of ../shared
scores the other with its length fallback, and holds the TF-IDF floor there
(bench/ood_bench.py prints the full table)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rung.routing.data import Outcome, load_outcomes
from rung.routing.domain import Domain, fit_line, on_line
from rung.routing.heads import HeadsRouter, train_heads
from rung.routing.learned import RouterModel, train_router
from rung.routing.metrics import evaluate

DATA = Path(__file__).parents[2].parent / "shared/data/routellm"


@pytest.fixture(scope="module")
def sets() -> dict[str, list[Outcome]]:
    out = {b: load_outcomes(DATA, b) for b in ("gsm8k", "mmlu")}
    random.Random(0).shuffle(out["mmlu"])
    out["mmlu"] = out["mmlu"][:2000]  # keeps the module quick
    return out


def _apgr(scores: np.ndarray, rows: list[Outcome]) -> float:
    return evaluate(scores, [o.weak_correct for o in rows], [o.strong_correct for o in rows]).apgr


def _floor(train: list[Outcome], test: list[Outcome]) -> float:
    """The issue's floor: TF-IDF 1-2 grams + logistic regression on the 3-class gain."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    lr = LogisticRegression(max_iter=3000).fit(vec.fit_transform([o.prompt for o in train]),
                                               [o.gain for o in train])
    p = lr.predict_proba(vec.transform([o.prompt for o in test]))
    cls = list(lr.classes_)
    return _apgr(p[:, cls.index(1)] - p[:, cls.index(-1)], test)


def test_domain_flags_the_other_benchmark_and_about_one_percent_of_its_own(
        sets: dict[str, list[Outcome]]) -> None:
    for src, dst in (("gsm8k", "mmlu"), ("mmlu", "gsm8k")):
        own = [o.prompt for o in sets[src]]
        train, held = own[len(own) // 5:], own[:len(own) // 5]
        domain = Domain.fit(train)
        assert domain is not None
        held_out = np.mean([not domain.contains(p) for p in held])
        other = np.mean([not domain.contains(o.prompt) for o in sets[dst]])
        assert held_out < 0.05, (src, held_out)
        assert other > 0.95, (src, dst, other)


def test_too_few_prompts_means_no_domain_check() -> None:
    assert Domain.fit(["what is 2+2?"] * 10) is None


def test_fit_line_follows_length() -> None:
    prompts = ["x" * n for n in (10, 100, 1000, 10000)]
    coef = fit_line(prompts, [0.0, 1.0, 2.0, 3.0])
    assert on_line(coef, "x" * 5000) > on_line(coef, "x" * 50)
    assert fit_line(["same", "same"], [1.0, 0.0]).tolist() == [0.0, 0.5]  # no spread


@pytest.mark.parametrize("kind", ["heads", "stacked"])
def test_learned_routers_hold_the_tfidf_floor_out_of_domain(
        sets: dict[str, list[Outcome]], kind: str, tmp_path: Path) -> None:
    for src, dst in (("gsm8k", "mmlu"), ("mmlu", "gsm8k")):
        train, test = sets[src], sets[dst]
        router: HeadsRouter | RouterModel
        if kind == "heads":
            router = train_heads([(o.prompt, o.weak_correct) for o in train],
                                 [(o.prompt, o.strong_correct) for o in train])
        else:
            router = train_router(train, use_embeddings=False, inner_folds=2)
        router.save(tmp_path / f"{kind}-{src}.npz")  # the domain survives a round trip
        loaded = (HeadsRouter if kind == "heads" else RouterModel).load(
            tmp_path / f"{kind}-{src}.npz")
        assert loaded.domain is not None
        assert not any(loaded.in_domain(o.prompt) for o in test[:50])
        scores = loaded.score_batch([o.prompt for o in test])
        assert _apgr(scores, test) >= _floor(train, test), (kind, src, dst)


def test_in_domain_prompts_keep_the_learned_score(sets: dict[str, list[Outcome]]) -> None:
    train = sets["gsm8k"]
    router = train_heads([(o.prompt, o.weak_correct) for o in train],
                         [(o.prompt, o.strong_correct) for o in train])
    inside = next(o.prompt for o in train if router.in_domain(o.prompt))
    outside = sets["mmlu"][0].prompt
    assert router.score(outside) == pytest.approx(router.fallback(outside))
    # the in-domain score is the heads' own, not the length line's
    assert router.score(inside) != pytest.approx(router.fallback(inside))


def test_the_route_says_when_the_fallback_scored(sets: dict[str, list[Outcome]],
                                                 tmp_path: Path) -> None:
    """What the gateway records as the route's router: the version, and for a prompt out
    of the router's domain, that its fallback scored it."""
    from rung.routing.scorers import LearnedScorer
    from rung.types import ChatRequest, Message

    train = sets["gsm8k"]
    router = train_heads([(o.prompt, o.weak_correct) for o in train],
                         [(o.prompt, o.strong_correct) for o in train])
    router.meta["version"] = "v1"
    router.save(tmp_path / "r.npz")
    scorer = LearnedScorer(tmp_path / "r.npz")

    def scored(prompt: str) -> tuple[float, str]:
        return scorer.scored(ChatRequest(messages=(Message("user", prompt),)))

    inside = next(o.prompt for o in train if router.in_domain(o.prompt))
    outside = sets["mmlu"][0].prompt
    assert scored(inside) == (pytest.approx(router.score(inside)), "learned:v1")
    assert scored(outside) == (pytest.approx(router.fallback(outside)),
                               "learned:v1 (out of domain: fallback)")
