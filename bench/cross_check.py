"""One model checking another on GSM8K: does a local tier's own answer, compared with the
weak model's, make a better cascade than the learned verifier alone?

    .venv/bin/python bench/cross_check.py --run runs/ladder-gsm8k [--run DIR ...]

RouteLLM's GSM8K table has Mixtral's (weak) answers; a ``rung eval run`` directory over
``gsm8k/test.jsonl`` (or part of it) has each local tier's greedy answer to the same
questions; several runs are merged. On the
questions in both, the cross-check's score is 1 - agreement (the final answers compared by
``rung.verify.final.answer_key``, as the ``self_consistency`` verifier with
``tier`` set does), the learned verifier's is its 5-fold out-of-fold score over all 909
items, and both together average the two, which escalates every answer the checker
disagrees with first, in the learned verifier's order, then the rest. Cascade APGR, 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rung.eval.outcomes import answers_on
from rung.eval.routing import bootstrap_apgr, cross_val, fit_verifier
from rung.routing.data import load_outcomes
from rung.routing.metrics import evaluate
from rung.verify.final import answer_key

MAX_SCORES = (0.5, 0.55, 0.6)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/data/routellm"
    ap.add_argument("--data", default=str(default_data))
    ap.add_argument("--run", required=True, action="append",
                    help="a rung eval run directory over GSM8K questions (repeatable)")
    args = ap.parse_args(argv)
    rows = load_outcomes(args.data, "gsm8k")
    weak = np.array([o.weak_correct for o in rows])
    strong = np.array([o.strong_correct for o in rows])
    verifier = cross_val(rows, 5, 0, fit_verifier, None)
    tiers: dict[str, dict[int, dict[str, Any]]] = {}
    seconds: dict[str, list[float]] = {}
    for run in map(Path, args.run):
        for name, got in answers_on(run, [o.prompt for o in rows]).items():
            tiers.setdefault(name, {}).update(got)
        if (run / "summary.json").is_file():
            for name, row in json.loads((run / "summary.json").read_text()).items():
                if "seconds_per_item" in row:
                    seconds.setdefault(name, []).append(float(row["seconds_per_item"]))
    print(f"GSM8K cascade on Mixtral's answers (learned verifier over all {len(rows)} items: "
          f"APGR {evaluate(verifier, weak, strong).apgr:.3f})")
    print("| checking tier | items | agrees | weak right when agreeing | s/item (run) | verifier "
          "| cross-check | both (checker first) |")
    print("|---|---|---|---|---|---|---|---|")
    points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, got in tiers.items():
        idx = np.array(sorted(got))
        w, s = weak[idx], strong[idx]
        agree = np.array([float(answer_key(str(got[i]["answer"]))
                                == answer_key(rows[i].weak_response or "")) for i in idx])
        secs = float(np.mean(seconds.get(name, [float("nan")])))
        cells = []
        for scores in (verifier[idx], 1.0 - agree, (verifier[idx] + 1.0 - agree) / 2):
            lo, hi = bootstrap_apgr(scores, w, s)
            cells.append(f"{evaluate(scores, w, s).apgr:.3f} ({lo:.2f}-{hi:.2f})")
        right = f"{w[agree == 1].mean():.1%}" if agree.any() else "-"
        print(f"| {name} | {len(idx)} | {agree.mean():.1%} | {right} | {secs:.1f} | "
              + " | ".join(cells) + " |")
        points[name] = (idx, agree == 1)
    print("\nOperating points (learned verifier's max_score; with the cross-check, "
          'verify_rule = "any": accepted when the checker agrees or the verifier accepts)')
    print("| checking tier | max_score | escalated, verifier alone | accuracy | escalated, "
          "with cross-check | accuracy |")
    print("|---|---|---|---|---|---|")
    for name, (idx, agrees) in points.items():
        w, s, v = weak[idx], strong[idx], verifier[idx]
        print(f"| {name} | Mixtral alone | 0% | {w.mean():.1%} | GPT-4 alone: 100% | "
              f"{s.mean():.1%} |")
        for cut in MAX_SCORES:
            alone = v > cut
            both = alone & ~agrees
            print(f"| {name} | {cut} | {alone.mean():.1%} | {np.where(alone, s, w).mean():.1%}"
                  f" | {both.mean():.1%} | {np.where(both, s, w).mean():.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
