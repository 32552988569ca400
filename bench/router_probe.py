#!/usr/bin/env python3
"""Experiment: does a small model's surprise at a GSM8K question tell how hard it is?

    .venv/bin/python bench/router_probe.py                       # SmolLM2-135M, ~4 min here
    .venv/bin/python bench/router_probe.py --model qwen2.5-coder-0.5b   # ~12 min here

For each of the 909 uncontaminated RouteLLM GSM8K dev questions, the model reads the
question once (teacher-forced) and the probe takes the per-token surprisal: mean, max,
spread, top decile, the last 20 tokens', the share above 5 nats, the mean next-token
entropy, and the length. A 3-class gain logistic regression on those (alone, and with the
router's structure features) is cross-validated like `rung eval routing` (5 folds, seed
0), and rank-averaged with the shipped learned router's out-of-fold scores. Prints APGR
for each as a Markdown table. Not part of the router: see the README for the result.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rung.catalog import resolve
from rung.config import CatalogConfig
from rung.eval.routing import cross_val, fit_router, oof_gain
from rung.routing.data import load_outcomes
from rung.routing.metrics import evaluate
from rung.routing.structure import structure_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routellm"


def surprisal_features(model: str, prompts: list[str]) -> npt.NDArray[np.float64]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(resolve(model, catalog=CatalogConfig())), n_ctx=1024,
                n_batch=512, n_threads=2, logits_all=True, verbose=False)
    rows = []
    for p in prompts:
        toks = llm.tokenize(p.encode(), add_bos=True)[:1000]
        llm.reset()
        llm.eval(toks)
        sc = np.asarray(llm.scores[: len(toks) - 1], dtype=np.float64)
        m = sc.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(sc - m).sum(axis=1))
        nll = lse - sc[np.arange(len(toks) - 1), toks[1:]]
        ent = -(np.exp(sc - lse[:, None]) * (sc - lse[:, None])).sum(axis=1)
        top = np.sort(nll)[-max(1, len(nll) // 10):]
        rows.append([nll.mean(), nll.max(), nll.std(), np.log(len(toks)), top.mean(),
                     ent.mean(), (nll > 5).mean(), nll[-20:].mean()])
    return np.array(rows)


def main() -> None:
    from scipy.stats import rankdata

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    outs = load_outcomes(args.data, "gsm8k")
    weak = np.array([o.weak_correct for o in outs])
    strong = np.array([o.strong_correct for o in outs])
    gain = np.array([o.gain for o in outs])
    t0 = time.perf_counter()
    feats = surprisal_features(args.model, [o.prompt for o in outs])
    secs = (time.perf_counter() - t0) / len(outs)
    struct = np.array([structure_features(o.prompt) for o in outs])
    base = cross_val(outs, 5, 0, fit_router(embeddings=False, seed=0), None)
    print(f"{args.model}: {len(outs)} questions, {secs * 1000:.0f} ms a question\n")
    print("| scorer | APGR | rank-averaged with the learned router |\n|---|---|---|")
    print(f"| learned router (shipped) | {evaluate(base, weak, strong).apgr:.3f} | |")
    for name, x in (("surprisal probe", feats), ("surprisal + structure",
                                                  np.hstack([feats, struct]))):
        s = oof_gain(x, gain, c=0.1)
        mix = rankdata(base) + rankdata(s)
        print(f"| {name} | {evaluate(s, weak, strong).apgr:.3f} | "
              f"{evaluate(mix, weak, strong).apgr:.3f} |")


if __name__ == "__main__":
    main()
