#!/usr/bin/env python3
"""Probe: when a local model stops after one tool call, how likely did it find a second?

For the first N items of some BFCL dev categories, generate greedily through the tier's
own prompt (tools offered, `tool_choice` auto) and, at the step where the model ends its
answer, print the log-probability and rank of the token that opens another call
(Qwen's `<tool_call>`). A lead for parallel calls: if that logprob separates items that
want several calls from those that want one, a continuation can be forced there.

    .venv/bin/python bench/parallel_probe.py qwen2.5-coder-0.5b --n 8
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from rung.backends.llama import LlamaBackend
from rung.backends.logprobs import log_softmax
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.eval.bfcl import load
from rung.eval.datasets import Item
from rung.eval.live import request_for

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("parallel", "live_parallel", "simple_python", "live_simple", "multiple")


async def probe(model: str, n: int) -> None:
    import llama_cpp

    b = LlamaBackend("probe", LlamaBackendConfig(model=model, n_ctx=4096),
                     catalog=CatalogConfig())
    await b.start()
    llm = b._llms[0]
    opener = llm.tokenize(b"<tool_call>", add_bos=False, special=True)[0]
    print("| category | item | calls wanted | logprob of another call | rank |")
    print("|---|---|---:|---:|---:|")
    try:
        for cat in CATEGORIES:
            for case in load(BFCL / f"BFCL_v4_{cat}.json")[0][:n]:
                item = Item(id=case.id, dataset="bfcl", prompt=case.question,
                            question=case.question, reference="", category=cat, case=case)
                tokens, _ = b._prompt(request_for(item, seed=0, max_tokens=256))
                llm.reset()
                last: dict[str, Any] = {}

                def keep(ids: Any, scores: Any, last: dict[str, Any] = last) -> Any:
                    last["s"] = np.asarray(scores, dtype=np.float32).copy()
                    return scores

                for i, t in enumerate(llm.generate(
                        tokens, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                        logits_processor=llama_cpp.LogitsProcessorList([keep]))):
                    if llama_cpp.llama_vocab_is_eog(llm._model.vocab, t) or i >= 256:
                        break
                lp = log_softmax(last["s"])
                rank = int((lp > lp[opener]).sum())
                print(f"| {cat} | {case.id} | {len(case.ground_truth)} | "
                      f"{lp[opener]:.2f} | {rank} |", flush=True)
    finally:
        await b.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=8, help="items of each category")
    args = ap.parse_args()
    asyncio.run(probe(args.model, args.n))


if __name__ == "__main__":
    main()
