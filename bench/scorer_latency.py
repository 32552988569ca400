"""Per-request scoring latency (p50, p90) of a trained router and verifier file.

    .venv/bin/python bench/scorer_latency.py --router R.npz --verifier V.npz

Prompts and answers are GSM8K's and MMLU's from the shared RouteLLM data; each is scored
alone, as the gateway does, after one warm-up call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rung.routing.data import load_outcomes
from rung.routing.learned import RouterModel
from rung.verify.learned import VerifierModel


def timings(fn: Callable[[int], float], n: int) -> str:
    fn(0)
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        ms.append((time.perf_counter() - t0) * 1000)
    return f"p50 {np.percentile(ms, 50):6.2f} ms  p90 {np.percentile(ms, 90):6.2f} ms  (n={n})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/data/routellm"
    ap.add_argument("--data", default=str(default_data))
    ap.add_argument("--router")
    ap.add_argument("--verifier")
    ap.add_argument("-n", type=int, default=200)
    args = ap.parse_args(argv)
    gsm = load_outcomes(args.data, "gsm8k")
    mmlu = load_outcomes(args.data, "mmlu")[::7]
    if args.router:
        router = RouterModel.load(args.router)
        print(f"router {args.router} ({','.join(router.components)})")
        for name, rows in (("gsm8k", gsm), ("mmlu", mmlu)):
            prompts = [r.prompt for r in rows]

            def one(i: int, prompts: list[str] = prompts) -> float:
                return router.score(prompts[i])

            print(f"  {name:6s}", timings(one, args.n))
    if args.verifier:
        ver = VerifierModel.load(args.verifier)
        print(f"verifier {args.verifier}")
        print(
            "  gsm8k ",
            timings(lambda i: ver.score(gsm[i].prompt, gsm[i].weak_response or ""), args.n),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
