#!/usr/bin/env python3
"""Benchmark: llama.cpp's OpenMP wait policy on a local tier, active against passive.

    .venv/bin/python bench/omp_wait.py [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
        [--passes 1]

rung sets ``OMP_WAIT_POLICY=PASSIVE`` before llama.cpp loads (docs/benchmarks.md says
why: on a busy 2-core machine the default active wait collapsed generation). This
measures what the passive wait costs when nothing else runs: six BFCL dev items
(simple_python, live_multiple and multiple, two each; ../shared/data/bfcl), greedy, up to
128 tokens, through ``LlamaBackend`` in a fresh process per model and policy (the policy
is read once, when libgomp loads), one warm-up item first. Prints the compute seconds
per pass. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"
CATEGORIES = ("simple_python", "live_multiple", "multiple")


async def _measure(model: str, passes: int) -> list[float]:
    from rung.backends.llama import LlamaBackend
    from rung.config import CatalogConfig, LlamaBackendConfig
    from rung.eval.datasets import Item, first, load
    from rung.eval.live import request_for

    items, _ = load("bfcl", str(BFCL))
    two_each = first(items, 2)
    selected = [i for c in CATEGORIES for i in two_each if i.category == c]
    backend = LlamaBackend("tier", LlamaBackendConfig(type="llama", model=model, n_threads=2,
                                                      n_ctx=4096), catalog=CatalogConfig())
    await backend.start()

    async def one_pass(todo: list[Item]) -> float:
        total = 0.0
        for item in todo:
            async for chunk in backend.stream(request_for(item, seed=0, max_tokens=128)):
                if chunk.compute_s is not None:
                    total += chunk.compute_s
        return total

    try:
        await one_pass(selected[:1])  # warm-up
        return [round(await one_pass(selected), 2) for _ in range(passes)]
    finally:
        await backend.aclose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child, args.passes))))
        return 0
    print("| tier | OMP_WAIT_POLICY=ACTIVE | PASSIVE (rung's default) |\n|---|---:|---:|")
    for model in args.models.split(","):
        cells = []
        for policy in ("ACTIVE", "PASSIVE"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", model, "--passes", str(args.passes)],
                env={**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)},
                capture_output=True, text=True, timeout=1800, check=True)
            cells.append(" / ".join(f"{s:.1f} s" for s in json.loads(out.stdout.splitlines()[-1])))
        print(f"| {model} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
