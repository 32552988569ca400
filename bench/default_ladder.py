"""The built-in ladder's quality and compute, replayed from a run of both its tiers.

    .venv/bin/rung eval run --dataset gsm8k --data ../shared/data/routellm/gsm8k/test.jsonl \
        --limit 40 --tiers all --out runs/default-gsm8k --max-tokens 320 --parallel 8
    .venv/bin/python bench/default_ladder.py --run runs/default-gsm8k

For every item both tiers answered, the built-in policy (rung.defaults) is applied to
the recorded answers: a heuristic score at or above ``START_HIGH`` starts at the 0.5B;
else SmolLM2's answer is kept unless the ``arithmetic`` check or the ``repetition`` check
(its 3-gram share; the 256-token cap cannot be replayed on answers recorded with another
limit) rejects it, in which case the 0.5B's is used and both are paid for. Compute is each answer's recorded ``compute_s``.
Prints a markdown table: SmolLM2 alone, the 0.5B alone, the built-in ladder, and the
ladder without its router (every request starts at SmolLM2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rung.defaults import START_HIGH, STRONGER
from rung.routing.scorers import HeuristicScorer
from rung.types import ChatRequest, Message
from rung.verify.arithmetic import check
from rung.verify.repetition import RepetitionVerifier, repeated_share

SMALL = "smollm2-135m"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    args = ap.parse_args()
    rows: dict[str, dict[str, dict[str, object]]] = {}
    for line in Path(args.run, "items.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault(str(r["item"]), {})[str(r["target"])] = r
    items = [v for v in rows.values() if SMALL in v and STRONGER in v]
    scorer = HeuristicScorer()
    policies: dict[str, list[tuple[bool, float]]] = {
        "SmolLM2-135M alone": [], "Qwen2.5-Coder-0.5B alone": [],
        "built-in ladder (router + checks)": [], "ladder without the router": []}
    routed_high = escalated = 0
    for v in items:
        small, big = v[SMALL], v[STRONGER]
        s_sec, b_sec = float(small["compute_s"]), float(big["compute_s"])  # type: ignore[arg-type]
        req = ChatRequest(messages=(Message("user", str(small["question"])),))
        policies["SmolLM2-135M alone"].append((bool(small["correct"]), s_sec))
        policies["Qwen2.5-Coder-0.5B alone"].append((bool(big["correct"]), b_sec))
        accepted = check(req, str(small["answer"])).accept and \
            repeated_share(str(small["answer"])) < RepetitionVerifier().max_repeated
        cascade = (bool(small["correct"]), s_sec) if accepted else \
            (bool(big["correct"]), s_sec + b_sec)
        policies["ladder without the router"].append(cascade)
        if scorer.score(req) >= START_HIGH:
            routed_high += 1
            policies["built-in ladder (router + checks)"].append((bool(big["correct"]), b_sec))
        else:
            escalated += not accepted
            policies["built-in ladder (router + checks)"].append(cascade)
    n = len(items)
    base = sum(s for _, s in policies["Qwen2.5-Coder-0.5B alone"])
    print(f"{n} items; router sent {routed_high} straight to {STRONGER}; of the rest, "
          f"the checks escalated {escalated}\n")
    print("| policy | accuracy | compute s/item | compute vs 0.5B alone |")
    print("|---|---|---|---|")
    for name, got in policies.items():
        right = sum(ok for ok, _ in got)
        secs = sum(s for _, s in got)
        print(f"| {name} | {right / n:.1%} ({right}/{n}) | {secs / n:.2f} | {secs / base:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
