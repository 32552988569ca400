#!/usr/bin/env python3
"""Benchmark: parallel calls under ``tool_choice = "required"``, one call or a list.

    .venv/bin/python bench/forced_parallel.py qwen2.5-coder-0.5b --n 5

For the first ``--n`` items of BFCL dev categories (``../shared/data/bfcl``), a local tier
answers each with ``tool_choice`` required twice: with ``parallel_tool_calls`` false (the
grammar holds the answer to one call object) and as sent by default (the grammar takes a
JSON list of one or more calls). Greedy, in process, BFCL's AST check. Prints, per
category and setting, the right answers and the number of calls made per item.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import platform
from pathlib import Path

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.eval.checks import check
from rung.eval.datasets import Item, bfcl_items
from rung.eval.live import request_for
from rung.types import ChatRequest, ToolCallDelta, ToolChoice, assemble_tool_calls

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("parallel", "parallel_multiple", "live_parallel", "simple_python", "multiple")


class Tally:
    """Per category: the right answers (BFCL's check) and the calls made per item; and
    the compute seconds in all. Shared with bench/more_calls.py."""

    def __init__(self) -> None:
        self.right: dict[str, list[int]] = {}
        self.made: dict[str, list[int]] = {}
        self.compute = 0.0

    async def answer(self, backend: LlamaBackend, item: Item, req: ChatRequest) -> None:
        """Stream ``req`` (``item``'s request) through ``backend`` and count the answer."""
        assert item.case is not None
        text, deltas = "", list[ToolCallDelta]()
        async for c in backend.stream(req):
            text += c.text
            deltas += c.tool_calls
            self.compute += c.compute_s or 0.0
        calls = assemble_tool_calls(deltas)
        cat = item.case.category
        self.right.setdefault(cat, []).append(int(check(item, text, calls).correct))
        self.made.setdefault(cat, []).append(len(calls))

    def line(self, n_items: int) -> str:
        cells = "  ".join(f"{c} {sum(v)}/{len(v)} (calls {','.join(map(str, self.made[c]))})"
                          for c, v in self.right.items())
        total = sum(sum(v) for v in self.right.values())
        return f"{total}/{n_items}  compute {self.compute:.0f} s  {cells}"


async def run(model: str, n: int, max_tokens: int) -> None:
    items = [it for cat in CATEGORIES
             for it in bfcl_items(str(BFCL / f"BFCL_v4_{cat}.json"))[0][:n]]
    backend = LlamaBackend("bench", LlamaBackendConfig(model=model, n_ctx=4096),
                           catalog=CatalogConfig())
    await backend.start()
    try:
        for label, parallel in (("one call", False), ("a list", None)):
            tally = Tally()
            for it in items:
                req = dataclasses.replace(
                    request_for(it, seed=0, max_tokens=max_tokens), logprobs=False,
                    tool_choice=ToolChoice("required"), parallel_tool_calls=parallel)
                await tally.answer(backend, it, req)
            print(f"{model} {label:8} {tally.line(len(items))}", flush=True)
    finally:
        await backend.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=5, help="items of each category")
    ap.add_argument("--max-tokens", type=int, default=256)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}; categories {', '.join(CATEGORIES)}, "
          f"first {args.n} dev items each, greedy, tool_choice required")
    asyncio.run(asyncio.wait_for(run(args.model, args.n, args.max_tokens), timeout=3600))


if __name__ == "__main__":
    main()
