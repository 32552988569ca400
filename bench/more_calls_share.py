#!/usr/bin/env python3
"""Probe: after a local model's free call, how much does it want to add another?

    .venv/bin/python bench/more_calls_share.py qwen2.5-coder-0.5b --n 10 --out /tmp/share.json
    .venv/bin/python bench/more_calls_share.py qwen2.5-coder-0.5b --n 10 --skip 10

For the first ``--n`` dev items of BFCL categories (``../shared/data/bfcl``), the tier
answers freely (tools offered, ``auto``, greedy, as BFCL asks); where the answer is calls
alone, the model is shown them as an open JSON list (``rung.tools.more``) and the
probability mass of its next token is split between going on (a token that opens with
``,``) and closing the list (``]``). Printed per category: the share that goes on
(``P(,) / (P(,) + P(])``) for each item, and whether the item wants more calls than the
model made (BFCL's possible answer). Greedy decoding goes on only above 0.5; the table
says where a lower threshold would separate the items that want more from those that do
not. ``--out`` keeps the rows for choosing that threshold by cross-validation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from pathlib import Path

from rung import sampling
from rung.backends.llama import LlamaBackend, _logits_after
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.eval.datasets import Item, bfcl_items
from rung.eval.live import request_for
from rung.tools import more

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("parallel", "parallel_multiple", "live_parallel", "live_parallel_multiple",
              "simple_python", "multiple", "live_simple", "live_multiple")


def _wanted(item: Item) -> int:
    """How many calls the item's possible answer makes."""
    return len(item.case.ground_truth) if item.case is not None else 0


async def run(model: str, n: int, skip: int, out: str | None) -> None:
    import llama_cpp

    backend = LlamaBackend("probe", LlamaBackendConfig(model=model, n_ctx=4096,
                                                       more_calls=False),
                           catalog=CatalogConfig())
    await backend.start()
    llm = backend._llms[0]
    vocab = llm._model.vocab
    go_on, close = backend._decision_tokens(llm)  # as the backend decides
    rows: list[dict[str, object]] = []
    try:
        for cat in CATEGORIES:
            for it in bfcl_items(str(BFCL / f"BFCL_v4_{cat}.json"))[0][skip:skip + n]:
                req, _ = sampling.resolve(request_for(it, seed=0, max_tokens=256),
                                          backend.sampling)
                toks, _ = backend._prompt(req)
                pieces = []
                for t in llm.generate(toks, temp=0.0, top_k=1):
                    if llama_cpp.llama_vocab_is_eog(vocab, t) or len(pieces) >= 256:
                        break
                    pieces.append(llm.detokenize([t]).decode("utf-8", "replace"))
                plan = more.plan("".join(pieces))
                share = None
                if plan is not None:
                    head = llm.tokenize(more.list_prefix(plan.calls).encode(), add_bos=False,
                                        special=False)
                    share = more.go_on_share(_logits_after(llm, toks + head), go_on, close)
                made = len(plan.calls) if plan is not None else 0
                rows.append({"category": cat, "id": it.id, "made": made,
                             "wanted": _wanted(it), "share": share})
            cells = [r for r in rows if r["category"] == cat]
            print(f"{cat:24} " + " ".join(
                "-" if r["share"] is None else
                f"{r['share']:.2f}{'+' if int(r['wanted']) > int(r['made']) else ''}"  # type: ignore[call-overload]
                for r in cells), flush=True)
    finally:
        await backend.aclose()
    print("(share of going on after the calls made; + : the item wants more calls)")
    if out:
        Path(out).write_text(json.dumps({"model": model, "rows": rows}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=10, help="items of each category")
    ap.add_argument("--skip", type=int, default=0, help="start after this many items")
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}; dev items {args.skip}..{args.skip + args.n - 1} "
          "of each category, greedy")
    asyncio.run(asyncio.wait_for(run(args.model, args.n, args.skip, args.out), timeout=5400))


if __name__ == "__main__":
    main()
