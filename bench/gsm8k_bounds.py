"""How far can a GSM8K prompt router get? Two optimistic bounds, in APGR (5-fold CV, seed 0).

    .venv/bin/python bench/gsm8k_bounds.py [--run runs/ladder-gsm8k]

1. Features of the reference solution itself (steps, lines, operations, size of the answer),
   which no router has when a request arrives, alone, with the prompt's structure
   features, and with the shipped router's out-of-fold score as well.
2. With ``--run`` (a ``rung eval run`` directory over ``gsm8k/test.jsonl``): whether each
   local tier got the question right (known only with the reference), and its answer's
   mean logprob, on the questions shared with the RouteLLM table.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rung.eval.outcomes import answers_on
from rung.eval.routing import cross_val, fit_router, oof_gain
from rung.routing.data import Outcome, load_outcomes
from rung.routing.metrics import apgr, pgr_curve
from rung.routing.structure import structure_features

FArr = npt.NDArray[np.float64]


def solution_features(answer: str) -> list[float]:
    final = float(re.search(r"####\s*(-?[\d,]*\.?\d+)", answer).group(1).replace(",", ""))  # type: ignore[union-attr]
    calcs = re.findall(r"<<([^>]*)>>", answer)
    nums = [float(x) for c in calcs for x in re.findall(r"\d+\.?\d*", c)]
    return [float(len(calcs)), float(len(answer.split("\n"))), float(np.log1p(len(answer))),
            float(np.log1p(abs(final))), float(final != int(final)),
            float(sum(c.count("*") for c in calcs)), float(sum(c.count("/") for c in calcs)),
            float(np.log1p(max(nums))) if nums else 0.0, float(any("." in c for c in calcs))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/data/routellm"
    ap.add_argument("--data", default=str(default_data))
    ap.add_argument("--run", default=None, help="a rung eval run directory over GSM8K")
    args = ap.parse_args(argv)
    rows: list[Outcome] = load_outcomes(args.data, "gsm8k")
    weak = np.array([o.weak_correct for o in rows])
    strong = np.array([o.strong_correct for o in rows])
    gain = np.array([o.gain for o in rows], dtype=np.int64)

    def a(scores: FArr, w: npt.NDArray[np.bool_] = weak,
          s: npt.NDArray[np.bool_] = strong) -> str:
        return f"{apgr(*pgr_curve(scores, w, s)):.3f}"

    test = Path(args.data) / "gsm8k" / "test.jsonl"
    gold = {r["question"].strip(): r["answer"]
            for r in map(json.loads, test.read_text().splitlines())}
    router = cross_val(rows, 5, 0, fit_router(embeddings=False, seed=0), None)
    sol = np.array([solution_features(gold[o.prompt.strip()]) for o in rows])
    st = np.array([structure_features(o.prompt) for o in rows])
    print(f"GSM8K, {len(rows)} items, 5-fold CV seed 0 (random 0.500, RouteLLM's best 0.622)")
    print(f"  shipped router (prompt only)                     {a(router)}")
    print(f"  reference-solution features alone                {a(oof_gain(sol, gain))}")
    print(f"  + the prompt's structure features                "
          f"{a(oof_gain(np.hstack([sol, st]), gain))}")
    print(f"  + the router's out-of-fold score                 "
          f"{a(oof_gain(np.hstack([sol, st, router[:, None]]), gain))}")
    if args.run:
        tiers = answers_on(Path(args.run), [o.prompt for o in rows])
        for name, got in tiers.items():
            idx = np.array(sorted(got))
            right = np.array([float(bool(got[i]["correct"])) for i in idx])
            lp = np.array([float(got[i]["mean_logprob"] or 0.0) for i in idx])
            w, s = weak[idx], strong[idx]
            print(f"  {name} on {len(idx)} shared items (accuracy {right.mean():.1%}): "
                  f"'it got it wrong' {a(-right, w, s)}, low mean logprob {a(-lp, w, s)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
