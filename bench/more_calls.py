#!/usr/bin/env python3
"""Benchmark: further calls under ``tool_choice = "auto"`` (``more_calls``), off and on.

    .venv/bin/python bench/more_calls.py qwen2.5-coder-0.5b --n 5
    .venv/bin/python bench/more_calls.py qwen2.5-coder-0.5b --n 5 --share 0.5 --only-on

For the first ``--n`` dev items of BFCL categories (``../shared/data/bfcl``), a local tier
answers each as BFCL asks (tools offered, ``auto``, greedy) with the backend's
``more_calls`` off, then on (a fresh model each). Prints, per category and setting, the
right answers (BFCL's AST check), the calls made per item, and the compute seconds, so
what the continuation adds (parallel items right) and what it costs (seconds, and any
single-call item it breaks) sit side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
from pathlib import Path

from forced_parallel import Tally

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.eval.datasets import Item, bfcl_items
from rung.eval.live import request_for

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("parallel", "parallel_multiple", "live_parallel", "live_parallel_multiple",
              "simple_python", "multiple", "live_simple", "live_multiple")


async def one_setting(model: str, items: list[Item], *, on: bool, max_tokens: int,
                      share: float | None) -> None:
    cfg = LlamaBackendConfig(model=model, n_ctx=4096, more_calls=on)
    if share is not None:
        cfg = cfg.model_copy(update={"more_calls_share": share})
    backend = LlamaBackend("bench", cfg, catalog=CatalogConfig())
    await backend.start()
    tally = Tally()
    try:
        for it in items:
            await tally.answer(backend, it, request_for(it, seed=0, max_tokens=max_tokens))
    finally:
        await backend.aclose()
    label = f"more_calls on ({cfg.more_calls_share})" if on else "more_calls off"
    print(f"{model} {label:22} {tally.line(len(items))}", flush=True)


async def run(model: str, n: int, max_tokens: int, share: float | None,
              only_on: bool) -> None:
    items = [it for cat in CATEGORIES
             for it in bfcl_items(str(BFCL / f"BFCL_v4_{cat}.json"))[0][:n]]
    for on in ((True,) if only_on else (False, True)):
        await one_setting(model, items, on=on, max_tokens=max_tokens, share=share)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=5, help="items of each category")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--share", type=float, help="more_calls_share (default: the config's)")
    ap.add_argument("--only-on", action="store_true", help="skip the run with it off")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}; categories {', '.join(CATEGORIES)}, "
          f"first {args.n} dev items each, greedy, tool_choice auto")
    asyncio.run(asyncio.wait_for(run(args.model, args.n, args.max_tokens, args.share, args.only_on), timeout=5400))


if __name__ == "__main__":
    main()
