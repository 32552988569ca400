"""K-fold cross-validation of rung's learned router and verifier on RouteLLM's outcomes.

Prints APGR, CPT(50%) and CPT(80%) per scorer for MMLU and GSM8K, with the random and
oracle routers for scale. Every item is scored by a model trained on the other folds.

    .venv/bin/python bench/routing_cv.py --data ../shared/data/routellm [--embeddings]

MiniLM embeddings of every prompt are computed once and cached under --cache (the MMLU set
takes many minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rung.routing.data import Outcome, load_outcomes
from rung.routing.learned import train_router
from rung.routing.metrics import RouterReport, evaluate, oracle_scores, random_scores
from rung.verify.learned import train_verifier

FArr = npt.NDArray[np.float64]
E32 = npt.NDArray[np.float32]


def folds(n: int, k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::k]) for i in range(k)]


def cross_val(n: int, k: int, seed: int, fit_score: Callable[[list[int], list[int]], FArr]) -> FArr:
    out = np.zeros(n)
    parts = folds(n, k, seed)
    for i, test in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != i])
        out[test] = fit_score(train.tolist(), test.tolist())
    return out


def cached_embeddings(prompts: Sequence[str], cache: Path) -> E32:
    key = hashlib.sha256("\x00".join(prompts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{key}.npy"
    if path.is_file():
        vecs: E32 = np.load(path)
        return vecs
    from rung.routing.embed import MiniLM

    t0 = time.perf_counter()
    vecs = MiniLM().embed(prompts)
    print(f"  embedded {len(prompts)} prompts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def row(name: str, r: RouterReport) -> str:
    return f"| {name:<34} | {r.apgr:5.3f} | {r.cpt50:5.1f}% | {r.cpt80:5.1f}% |"


def bench(outcomes: list[Outcome], *, k: int, seed: int, emb: E32 | None) -> None:
    w = np.array([o.weak_correct for o in outcomes])
    s = np.array([o.strong_correct for o in outcomes])

    def sub(idx: list[int]) -> list[Outcome]:
        return [outcomes[i] for i in idx]

    print(row("random", evaluate(random_scores(len(w)), w, s)), flush=True)

    def router(use_emb: bool) -> Callable[[list[int], list[int]], FArr]:
        def fit_score(tr: list[int], te: list[int]) -> FArr:
            e_tr = emb[tr] if (use_emb and emb is not None) else None
            model = train_router(sub(tr), embeddings=e_tr, use_embeddings=False, seed=seed)
            e_te = emb[te] if (use_emb and emb is not None) else None
            return model.score_batch([o.prompt for o in sub(te)], e_te)

        return fit_score

    n = len(outcomes)
    tfidf = cross_val(n, k, seed, router(False))
    print(row("router: tfidf+structure (default)", evaluate(tfidf, w, s)), flush=True)
    full: FArr | None = None
    if emb is not None:
        full = cross_val(n, k, seed, router(True))
        print(row("router: + MiniLM emb/knn/subject", evaluate(full, w, s)), flush=True)
    if all(o.weak_response is not None for o in outcomes):

        def verifier(tr: list[int], te: list[int]) -> FArr:
            model = train_verifier(sub(tr))
            rows = sub(te)
            return model.score_batch(
                [o.prompt for o in rows], [o.weak_response or "" for o in rows]
            )

        ver = cross_val(n, k, seed, verifier)
        print(row("cascade: verifier", evaluate(ver, w, s)), flush=True)
    print(row("oracle", evaluate(oracle_scores(w, s), w, s)), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/routellm")
    )
    ap.add_argument("--benchmark", default="mmlu,gsm8k")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embeddings", action="store_true", help="also the MiniLM stack")
    ap.add_argument("--cache", default=".rung/cache", help="where prompt embeddings are kept")
    args = ap.parse_args(argv)
    cmd = "python bench/routing_cv.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in args.benchmark.split(","):
        outcomes = load_outcomes(args.data, name)
        emb = (
            cached_embeddings([o.prompt for o in outcomes], Path(args.cache))
            if args.embeddings
            else None
        )
        t0 = time.perf_counter()
        print(f"\n{name}: {len(outcomes)} items, {args.folds}-fold CV (seed {args.seed})\n")
        print("| scorer                             | APGR  | CPT50  | CPT80  |")
        print("|------------------------------------|-------|--------|--------|")
        bench(outcomes, k=args.folds, seed=args.seed, emb=emb)
        print(f"\n({time.perf_counter() - t0:.0f} s)")
    print(f"\nreproduce: {cmd.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
