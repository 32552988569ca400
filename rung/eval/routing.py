"""Routing evaluation on outcome data (RouteLLM format), with no item scored by a model
that saw it: k-fold cross-validation, or a fixed train/test split.

Scorers evaluated: the learned router (TF-IDF + structure; with MiniLM when asked), the
heuristic baseline, the learned verifier as a cascade (GSM8K, where the weak model's
answers exist), against the random router (0.5 APGR by construction) and the oracle.
Each gets APGR, CPT(50%) and CPT(80%), and a bootstrap 95% interval for APGR.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.routing.data import Outcome
from rung.routing.metrics import evaluate, oracle_scores, pgr_curve, random_scores

FArr = npt.NDArray[np.float64]
E32 = npt.NDArray[np.float32]
FitScore = Callable[[Sequence[Outcome], Sequence[Outcome], "E32 | None", "E32 | None"], FArr]


def folds(n: int, k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::k]) for i in range(k)]


def oof_gain(x: FArr, gain: npt.NDArray[np.int64], *, c: float = 1.0, k: int = 5,
             seed: int = 0) -> FArr:
    """Out-of-fold expected gain, P(+1) - P(-1), of a 3-class logistic regression on the
    standardised feature matrix ``x`` (for probing features outside the router)."""
    from sklearn.linear_model import LogisticRegression

    out = np.zeros(len(gain))
    for test in folds(len(gain), k, seed):
        train = np.setdiff1d(np.arange(len(gain)), test)
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd == 0] = 1.0
        m = LogisticRegression(C=c, max_iter=3000).fit((x[train] - mu) / sd, gain[train])
        p = m.predict_proba((x[test] - mu) / sd)
        classes = m.classes_.tolist()
        out[test] = p[:, classes.index(1)] - p[:, classes.index(-1)]
    return out


def cross_val(items: Sequence[Outcome], k: int, seed: int, fit_score: FitScore,
              emb: E32 | None) -> FArr:
    """Out-of-fold scores: each fold scored by a model trained on the other folds."""
    out = np.zeros(len(items))
    parts = folds(len(items), k, seed)
    for i, test in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != i])
        out[test] = fit_score([items[t] for t in train], [items[t] for t in test],
                              emb[train] if emb is not None else None,
                              emb[test] if emb is not None else None)
    return out


def fit_router(*, embeddings: bool, seed: int) -> FitScore:
    def fit_score(train: Sequence[Outcome], test: Sequence[Outcome], e_tr: E32 | None,
                  e_te: E32 | None) -> FArr:
        from rung.routing.learned import train_router

        model = train_router(list(train), embeddings=e_tr if embeddings else None,
                             use_embeddings=False, seed=seed)
        return model.score_batch([o.prompt for o in test], e_te if embeddings else None)
    return fit_score


def fit_verifier(train: Sequence[Outcome], test: Sequence[Outcome], e_tr: E32 | None,
                 e_te: E32 | None) -> FArr:
    from rung.verify.learned import train_verifier

    model = train_verifier(list(train))
    return model.score_batch([o.prompt for o in test], [o.weak_response or "" for o in test])


def heuristic(train: Sequence[Outcome], test: Sequence[Outcome], e_tr: E32 | None,
              e_te: E32 | None) -> FArr:
    from rung.routing.scorers import HeuristicScorer
    from rung.types import ChatRequest, Message

    h = HeuristicScorer()
    return np.array([h.score(ChatRequest(messages=(Message("user", o.prompt),)))
                     for o in test])


def cached_embeddings(prompts: Sequence[str], cache: Path) -> E32:
    key = hashlib.sha256("\x00".join(prompts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{key}.npy"
    if path.is_file():
        vecs: E32 = np.load(path)
        return vecs
    from rung.routing.embed import MiniLM

    t0 = time.perf_counter()
    vecs = MiniLM().embed(prompts)
    print(f"embedded {len(prompts)} prompts in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def aiq(shares: FArr, accuracy: FArr) -> float:
    """RouterBench's AIQ: area under the upper convex hull of the quality-cost curve
    (cost = strong-call share in [0, 1], quality = accuracy)."""
    hull: list[tuple[float, float]] = []
    for x, y in zip(shares.tolist(), accuracy.tolist(), strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) >= 0:  # not a right turn
                hull.pop()
            else:
                break
        hull.append((x, y))
    hx, hy = np.array([h[0] for h in hull]), np.array([h[1] for h in hull])
    return float(np.sum((hy[1:] + hy[:-1]) * np.diff(hx)) / 2.0)


@dataclass(frozen=True)
class Curve:
    shares: FArr
    pgr: FArr
    accuracy: FArr


def score_summary(scores: FArr, weak: npt.NDArray[np.bool_], strong: npt.NDArray[np.bool_],
                  *, budget: float, seed: int, ci: bool = True,
                  ) -> tuple[dict[str, Any], Curve]:
    shares, pgr = pgr_curve(scores, weak, strong)
    acc = weak.mean() + pgr * (strong.mean() - weak.mean())
    r = evaluate(scores, weak, strong)
    k = min(len(acc) - 1, round(budget * (len(acc) - 1)))
    out: dict[str, Any] = {"apgr": round(r.apgr, 4), "cpt50": round(r.cpt50, 2),
                           "cpt80": round(r.cpt80, 2), "aiq": round(aiq(shares, acc), 4),
                           f"accuracy_at_{round(budget * 100)}pct": round(float(acc[k]), 4)}
    if ci:
        lo, hi = bootstrap_apgr(scores, weak, strong, seed=seed)
        out["apgr_ci95"] = [round(lo, 4), round(hi, 4)]
    return out, Curve(shares, pgr, acc)


def bootstrap_apgr(scores: FArr, weak: npt.NDArray[np.bool_], strong: npt.NDArray[np.bool_],
                   *, n: int = 200, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of APGR over item resamples (scores held fixed)."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(scores), len(scores))
        if strong[idx].sum() <= weak[idx].sum():
            continue
        vals.append(evaluate(scores[idx], weak[idx], strong[idx]).apgr)
    return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))


def run(name: str, train: Sequence[Outcome], test: Sequence[Outcome] | None, *, k: int,
        seed: int, emb_train: E32 | None = None, emb_test: E32 | None = None,
        budget: float = 0.3, log: Callable[[str], None] = lambda _: None,
        ) -> tuple[dict[str, Any], dict[str, Curve]]:
    """Evaluate every scorer; ``test`` None means k-fold CV on ``train``. Returns the JSON
    summary and each scorer's curve (for the report)."""
    items = list(test) if test is not None else list(train)
    weak = np.array([o.weak_correct for o in items])
    strong = np.array([o.strong_correct for o in items])
    scorers: list[tuple[str, FitScore]] = [("router", fit_router(embeddings=False, seed=seed))]
    if emb_train is not None:
        scorers.append(("router+minilm", fit_router(embeddings=True, seed=seed)))
    scorers.append(("heuristic", heuristic))
    if all(o.weak_response for o in train) and all(o.weak_response for o in items) \
            and len({o.weak_correct for o in train}) == 2:  # a verifier needs both kinds
        scorers.append(("cascade:verifier", fit_verifier))
    results: dict[str, Any] = {}
    curves: dict[str, Curve] = {}
    for label, fit_score in scorers:
        t0 = time.perf_counter()
        if test is None:
            scores = cross_val(items, k, seed, fit_score, emb_train)
        else:
            scores = fit_score(list(train), items, emb_train, emb_test)
        results[label], curves[label] = score_summary(scores, weak, strong, budget=budget,
                                                      seed=seed)
        log(f"{name} {label}: APGR {results[label]['apgr']:.3f} "
            f"({time.perf_counter() - t0:.0f} s)")
    for label, scores in (("random", random_scores(len(items))),
                          ("oracle", oracle_scores(weak, strong))):
        results[label], curves[label] = score_summary(scores, weak, strong, budget=budget,
                                                      seed=seed, ci=False)
    summary = {"benchmark": name, "n": len(items), "weak": round(float(weak.mean()), 4),
               "strong": round(float(strong.mean()), 4),
               "protocol": f"{k}-fold CV, seed {seed}" if test is None else "train/test split",
               "results": results}
    return summary, curves


def markdown(summary: dict[str, Any]) -> str:
    lines = [(f"**{summary['benchmark']}**: {summary['n']} items, weak "
             f"{summary['weak']:.1%}, strong {summary['strong']:.1%}, {summary['protocol']}"),
             "", "| scorer | APGR | 95% CI | CPT(50%) | CPT(80%) | AIQ |",
             "|---|---|---|---|---|---|"]
    for label, r in summary["results"].items():
        ci = r.get("apgr_ci95")
        ci_s = f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else ""
        lines.append(f"| {label} | {r['apgr']:.3f} | {ci_s} | {r['cpt50']:.1f}% | "
                     f"{r['cpt80']:.1f}% | {r['aiq']:.3f} |")
    return "\n".join(lines)
