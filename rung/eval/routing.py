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
from rung.routing.metrics import RouterReport, evaluate, oracle_scores, random_scores

FArr = npt.NDArray[np.float64]
E32 = npt.NDArray[np.float32]
FitScore = Callable[[Sequence[Outcome], Sequence[Outcome], "E32 | None", "E32 | None"], FArr]


def folds(n: int, k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::k]) for i in range(k)]


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
    from rung.backends.base import ChatRequest, Message
    from rung.routing.scorers import HeuristicScorer

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


@dataclass(frozen=True)
class Result:
    report: RouterReport
    apgr_ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        r = self.report
        return {"apgr": round(r.apgr, 4), "cpt50": round(r.cpt50, 2),
                "cpt80": round(r.cpt80, 2),
                "apgr_ci95": [round(self.apgr_ci[0], 4), round(self.apgr_ci[1], 4)]}


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
        log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Evaluate every scorer; ``test`` None means k-fold CV on ``train``."""
    items = list(test) if test is not None else list(train)
    weak = np.array([o.weak_correct for o in items])
    strong = np.array([o.strong_correct for o in items])
    scorers: list[tuple[str, FitScore]] = [("router", fit_router(embeddings=False, seed=seed))]
    if emb_train is not None:
        scorers.append(("router+minilm", fit_router(embeddings=True, seed=seed)))
    scorers.append(("heuristic", heuristic))
    if all(o.weak_response for o in train) and all(o.weak_response for o in items):
        scorers.append(("cascade:verifier", fit_verifier))
    results: dict[str, Any] = {}
    for label, fit_score in scorers:
        t0 = time.perf_counter()
        if test is None:
            scores = cross_val(items, k, seed, fit_score, emb_train)
        else:
            scores = fit_score(list(train), items, emb_train, emb_test)
        res = Result(evaluate(scores, weak, strong), bootstrap_apgr(scores, weak, strong,
                                                                    seed=seed))
        results[label] = res.as_dict()
        log(f"{name} {label}: APGR {res.report.apgr:.3f} ({time.perf_counter() - t0:.0f} s)")
    for label, scores in (("random", random_scores(len(items))),
                          ("oracle", oracle_scores(weak, strong))):
        results[label] = Result(evaluate(scores, weak, strong), (float("nan"),) * 2).as_dict()
        results[label].pop("apgr_ci95")
    return {"benchmark": name, "n": len(items), "weak": round(float(weak.mean()), 4),
            "strong": round(float(strong.mean()), 4),
            "protocol": f"{k}-fold CV, seed {seed}" if test is None else "train/test split",
            "results": results}


def markdown(summary: dict[str, Any]) -> str:
    lines = [(f"**{summary['benchmark']}**: {summary['n']} items, weak "
             f"{summary['weak']:.1%}, strong {summary['strong']:.1%}, {summary['protocol']}"),
             "", "| scorer | APGR | 95% CI | CPT(50%) | CPT(80%) |", "|---|---|---|---|---|"]
    for label, r in summary["results"].items():
        ci = r.get("apgr_ci95")
        ci_s = f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else ""
        lines.append(f"| {label} | {r['apgr']:.3f} | {ci_s} | {r['cpt50']:.1f}% | "
                     f"{r['cpt80']:.1f}% |")
    return "\n".join(lines)
