#!/usr/bin/env python3
"""The BFCL table: each tier, the verified ladder and its bounds, per category, from a
pinned run of the tiers (``rung eval run --dataset bfcl --tiers SMALL,BIG``).

    .venv/bin/python bench/bfcl_ladder.py --run runs/bfcl-ladder \\
        --tiers qwen2.5-coder-0.5b,qwen2.5-coder-1.5b

A ladder answer is the small tier's when its call(s) pass the verifier set, else the big
tier's, and its compute is the small tier's plus (when escalated) the big tier's: what
the cascade pays live. Verifier sets compared: ``tool_schema``; ``tool_schema`` +
``tool_relevance``; both + ``tool_logprob`` with its threshold cross-fitted (chosen on
one half of the items, measured on the other, and swapped: ``rung eval replay
--verifier tools``). Bounds: a perfect verifier (the small answer kept exactly when it
is right) and a perfect router (each item straight to the cheapest right tier).
Rows of an older run without ``relevance_ok`` get it computed here from the BFCL items.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rung.eval.bfcl import load
from rung.eval.live import request_for
from rung.eval.replay import by_item, replay, seconds_of
from rung.types import ToolCall
from rung.verify.relevance import ToolRelevanceVerifier

ROOT = Path(__file__).resolve().parents[1]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"
Row = dict[str, Any]


def annotate(rows: list[Row]) -> None:
    """relevance_ok for rows that lack it, from the items' own requests."""
    missing = [r for r in rows if "relevance_ok" not in r]
    if not missing:
        return
    from rung.eval.datasets import Item

    cases = {c.id: c for c in load(BFCL)[0]}
    for r in missing:
        case = cases[r["item"].removeprefix("bfcl/")]
        item = Item(id=case.id, dataset="bfcl", prompt=case.question, question=case.question,
                    reference="", category=case.category, case=case)
        req = request_for(item, seed=0, max_tokens=1)
        calls = [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
                 for c in r.get("tool_calls") or []]
        r["relevance_ok"] = ToolRelevanceVerifier().judge(req, calls).accept


def ladder(items: Sequence[list[Row]], accept: Callable[[Row], bool]) -> tuple[list[bool], float]:
    right, secs = [], 0.0
    for small, big in items:
        secs += seconds_of(small)
        if accept(small):
            right.append(bool(small["correct"]))
        else:
            secs += seconds_of(big)
            right.append(bool(big["correct"]))
    return right, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--tiers", required=True)
    args = ap.parse_args()
    tiers = args.tiers.split(",")
    assert len(tiers) == 2, "two tiers, cheapest first"
    rows = [json.loads(line) for line in (Path(args.run) / "items.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [r for r in rows if r["target"] in tiers]
    annotate(rows)
    items = by_item(rows, tiers)
    n = len(items)
    big_s = sum(seconds_of(b) for _, b in items)

    crossed = replay([r for it in items for r in it], tiers, target=1.0, verifier="tools")
    ths = crossed["cascade"]["thresholds_per_half"]
    policies: dict[str, tuple[list[bool], float]] = {
        tiers[0]: ([bool(s["correct"]) for s, _ in items], sum(seconds_of(s) for s, _ in items)),
        tiers[1]: ([bool(b["correct"]) for _, b in items], big_s),
        "ladder: tool_schema": ladder(items, lambda r: bool(r["schema_ok"])),
        "ladder: schema + relevance": ladder(
            items, lambda r: bool(r["schema_ok"]) and bool(r["relevance_ok"])),
    }
    perfect_v = ladder(items, lambda r: bool(r["correct"]))
    router_right = [bool(s["correct"] or b["correct"]) for s, b in items]
    router_s = sum(seconds_of(s) if s["correct"] or not b["correct"] else seconds_of(b)
                   for s, b in items)
    cats = sorted({str(s.get("category")) for s, _ in items},
                  key=lambda c: [s.get("category") for s, _ in items].index(c))
    head = ["policy", "all", "compute s/item", "compute vs big", *cats]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))

    def line(name: str, right: list[bool], secs: float) -> None:
        per = []
        for c in cats:
            hits = [h for h, (s, _) in zip(right, items, strict=True) if s.get("category") == c]
            per.append(f"{sum(hits)}/{len(hits)}")
        print(f"| {name} | {sum(right) / n:.3f} | {secs / n:.1f} | {secs / big_s:.0%} | "
              + " | ".join(per) + " |")

    for name, (right, secs) in policies.items():
        line(name, right, secs)
    c = crossed["cascade"]
    print(f"| ladder: schema + relevance + tool_logprob (cross-fitted, thresholds {ths}) | "
          f"{c['accuracy']:.3f} | {c['seconds_per_item']:.1f} | {c['compute_vs_largest']:.0%} | "
          + " | ".join(f"{v['cascade']:.2f}" for k, v in crossed.get("categories", {}).items()
                       if k in cats) + " |")
    line("bound: perfect verifier", *perfect_v)
    line("bound: perfect router", router_right, router_s)
    print(f"\n{n} items answered by both tiers; compute is each answer's own (compute_s).")


if __name__ == "__main__":
    main()
