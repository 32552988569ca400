#!/usr/bin/env python3
"""Demo: how often each drift test fires when traffic changes, and when it does not.

    .venv/bin/python bench/drift_demo.py [--reps 50] [--n 200] [--alpha 0.05]

Traces are built from RouteLLM's prompts in ../shared/data/routellm (no server): the
router score is rung's heuristic scorer on the prompt, a trace escalates when that score is
above its 70th percentile on MMLU, and the weak tier carries one *synthetic* verifier
whose score is drawn from Beta(2, 5) when the weak model really answered correctly and
Beta(5, 2) when it did not (accept when < 0.5), so quality drift tracks the weak
model's real accuracy on the sampled questions. Scenarios, each repeated ``--reps`` times
with fresh samples of ``--n`` traces per window:

  a. MMLU subject mix: reference 80% STEM / 20% humanities, recent 20% / 80%;
  b. GSM8K arrives: reference MMLU, recent GSM8K;
  c. no drift: two independent samples of the same MMLU mix (false alarms).

Prints the share of repetitions each test flags at ``--alpha`` (detection rate for a and
b, false-alarm rate for c) and the run time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rung.drift.report import DriftOptions, compare
from rung.routing.data import Outcome, load_outcomes
from rung.routing.scorers import HeuristicScorer
from rung.store.trace import Trace
from rung.types import ChatRequest, Message

DATA = ROOT.parent / "shared" / "data" / "routellm"
STEM = (
    "abstract_algebra",
    "astronomy",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_statistics",
    "machine_learning",
    "anatomy",
    "medical_genetics",
)
HUMANITIES = (
    "formal_logic",
    "high_school_european_history",
    "high_school_us_history",
    "high_school_world_history",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "moral_disputes",
    "moral_scenarios",
    "philosophy",
    "prehistory",
    "professional_law",
    "world_religions",
)


class Pools:
    """The question pools, with each prompt's router score computed once."""

    def __init__(self, data: Path) -> None:
        mmlu = load_outcomes(data, "mmlu")
        self.gsm8k = load_outcomes(data, "gsm8k")
        self.mmlu = mmlu
        self.stem = [o for o in mmlu if o.subject in STEM]
        self.humanities = [o for o in mmlu if o.subject in HUMANITIES]
        scorer = HeuristicScorer()
        self.score = {
            o.prompt: scorer.score(ChatRequest(messages=(Message(role="user", content=o.prompt),)))
            for o in mmlu + self.gsm8k
        }
        self.escalate_above = float(np.quantile([self.score[o.prompt] for o in mmlu], 0.7))

    def traces(
        self, rng: np.random.Generator, parts: list[tuple[list[Outcome], float]], n: int, t0: float
    ) -> list[Trace]:
        """``n`` traces whose questions come from each pool with the given share."""
        counts = rng.multinomial(n, [share for _, share in parts])
        picked = [
            pool[int(i)]
            for (pool, _), k in zip(parts, counts, strict=True)
            for i in rng.choice(len(pool), size=int(k), replace=False)
        ]
        out = []
        for j, i in enumerate(rng.permutation(len(picked))):
            o = picked[int(i)]
            score = self.score[o.prompt]
            v = float(rng.beta(2, 5) if o.weak_correct else rng.beta(5, 2))
            verdict = {"name": "demo", "score": v, "accept": v < 0.5, "detail": "synthetic"}
            out.append(
                Trace(
                    id=f"{t0:.0f}-{j}",
                    time=t0 + j,
                    model="rung",
                    tier="small",
                    escalated=score > self.escalate_above,
                    input_tokens=len(o.prompt) // 4,
                    output_tokens=50,
                    score=score,
                    messages=[{"role": "user", "content": o.prompt}],
                    route={
                        "reason": "demo",
                        "score": score,
                        "attempts": [
                            {"tier": "small", "outcome": "accepted", "verdicts": [verdict]}
                        ],
                    },
                )
            )
        return out


def scenarios(
    p: Pools,
) -> dict[str, tuple[list[tuple[list[Outcome], float]], list[tuple[list[Outcome], float]]]]:
    return {
        "a: subject mix": (
            [(p.stem, 0.8), (p.humanities, 0.2)],
            [(p.stem, 0.2), (p.humanities, 0.8)],
        ),
        "b: gsm8k arrives": ([(p.mmlu, 1.0)], [(p.gsm8k, 1.0)]),
        "c: no drift": ([(p.mmlu, 1.0)], [(p.mmlu, 1.0)]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=50, help="repetitions per scenario")
    ap.add_argument("--n", type=int, default=200, help="traces per window")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--embeddings", action="store_true", help="add MiniLM input features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--only", default="abc", help="scenarios to run, e.g. c (default abc)")
    args = ap.parse_args()

    started = time.perf_counter()
    pools = Pools(args.data)
    print(
        f"pools: MMLU {len(pools.mmlu)} (STEM {len(pools.stem)}, humanities "
        f"{len(pools.humanities)}), GSM8K {len(pools.gsm8k)}; loaded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    rates: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    order: list[str] = []
    for name, (ref_mix, rec_mix) in scenarios(pools).items():
        if name[0] not in args.only:
            continue
        rng = np.random.default_rng(args.seed)
        hits: dict[str, int] = {}
        t = time.perf_counter()
        for r in range(args.reps):
            ref = pools.traces(rng, ref_mix, args.n, t0=0.0)
            rec = pools.traces(rng, rec_mix, args.n, t0=1e6)
            report = compare(
                ref,
                rec,
                options=DriftOptions(
                    alpha=args.alpha,
                    permutations=args.permutations,
                    min_traces=20,
                    max_traces=None,
                    embed=args.embeddings,
                    seed=args.seed + 1000 * r,
                ),
            )
            for test in report.tests:
                if test.name not in order:
                    order.append(test.name)
                hits[test.name] = hits.get(test.name, 0) + test.drifted
            hits["overall (Bonferroni)"] = hits.get("overall (Bonferroni)", 0) + report.drifted
        seconds[name] = time.perf_counter() - t
        rates[name] = {k: v / args.reps for k, v in hits.items()}

    names = list(rates)
    print(
        f"\nshare of {args.reps} repetitions flagged at alpha={args.alpha:g}, "
        f"n={args.n} traces per window (a, b: detection rate; c: false-alarm rate)\n"
    )
    width = max(len(x) for x in [*order, "overall (Bonferroni)"])
    print(f"| {'test':<{width}} | " + " | ".join(f"{n:>16}" for n in names) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 18 for _ in names) + "|")
    for test in [*order, "overall (Bonferroni)"]:
        print(
            f"| {test:<{width}} | "
            + " | ".join(f"{rates[n].get(test, float('nan')):>16.2f}" for n in names)
            + " |"
        )
    print(
        f"| {'seconds (all reps)':<{width}} | "
        + " | ".join(f"{seconds[n]:>16.1f}" for n in names)
        + " |"
    )
    per = sum(seconds.values()) / (len(names) * args.reps)
    print(
        f"\n{per:.2f} s per report (2 windows of {args.n}); total "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
