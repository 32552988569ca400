#!/usr/bin/env python3
"""Probe: when a local model stops after one tool call, how likely did it find a second?

For the first N items of some BFCL dev categories, generate greedily through the tier's
own prompt (tools offered, `tool_choice` auto) and, at the step where the model ends its
answer, print the log-probability and rank of the token that opens another call
(Qwen's `<tool_call>`). A lead for parallel calls: if that logprob separates items that
want several calls from those that want one, a continuation can be forced there.

    .venv/bin/python bench/parallel_probe.py qwen2.5-coder-0.5b --n 8
    .venv/bin/python bench/parallel_probe.py qwen2.5-coder-0.5b --n 8 --force -25

With ``--force T``, where that logprob is at least ``T`` the opening token is forced and
generation goes on (up to 3 more times), and the table says whether the answer is right
(BFCL's check) without and with the forced calls.
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
from rung.eval.bfcl import check, load
from rung.eval.datasets import Item
from rung.eval.live import request_for
from rung.tools.parse import CallReader
from rung.types import ToolCall

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("parallel", "live_parallel", "simple_python", "live_simple", "multiple")


def _calls(text: str) -> list[ToolCall]:
    reader = CallReader()
    calls = reader.push(text)[1]
    return calls + reader.finish()[1]


async def probe(model: str, n: int, force: float | None) -> None:
    import llama_cpp

    b = LlamaBackend("probe", LlamaBackendConfig(model=model, n_ctx=4096),
                     catalog=CatalogConfig())
    await b.start()
    llm = b._llms[0]
    opener = llm.tokenize(b"<tool_call>", add_bos=False, special=True)[0]
    vocab = llm._model.vocab
    print("| category | item | calls wanted | logprob of another call | rank | right | "
          "forced calls | right then |")
    print("|---|---|---:|---:|---:|---|---:|---|")

    def run(tokens: list[int]) -> tuple[list[int], np.ndarray[Any, Any]]:
        last: dict[str, Any] = {}

        def keep(ids: Any, scores: Any) -> Any:
            last["s"] = np.asarray(scores, dtype=np.float32).copy()
            return scores

        out: list[int] = []
        for t in llm.generate(tokens, temp=0.0, top_k=0, top_p=1.0, min_p=0.0,
                              repeat_penalty=1.0,
                              logits_processor=llama_cpp.LogitsProcessorList([keep])):
            if llama_cpp.llama_vocab_is_eog(vocab, t) or len(out) >= 256:
                break
            out.append(t)
        return out, log_softmax(last["s"])

    try:
        for cat in CATEGORIES:
            for case in load(BFCL / f"BFCL_v4_{cat}.json")[0][:n]:
                item = Item(id=case.id, dataset="bfcl", prompt=case.question,
                            question=case.question, reference="", category=cat, case=case)
                tokens, _ = b._prompt(request_for(item, seed=0, max_tokens=256))
                llm.reset()
                out, lp = run(tokens)
                first_lp, rank = float(lp[opener]), int((lp > lp[opener]).sum())
                text = llm.detokenize(out, special=True).decode(errors="replace")
                right = check(case, _calls(text)).correct
                forced, right_then = 0, right
                if force is not None:
                    while lp[opener] >= force and forced < 3:
                        forced += 1
                        out = out + [opener]
                        more, lp = run(tokens + out)
                        out = out + more
                    if forced:
                        text = llm.detokenize(out, special=True).decode(errors="replace")
                        right_then = check(case, _calls(text)).correct
                print(f"| {cat} | {case.id} | {len(case.ground_truth)} | {first_lp:.2f} | "
                      f"{rank} | {right} | {forced} | {right_then} |", flush=True)
    finally:
        await b.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=8, help="items of each category")
    ap.add_argument("--force", type=float, default=None, metavar="T",
                    help="force another call where its logprob is at least T")
    args = ap.parse_args()
    asyncio.run(probe(args.model, args.n, args.force))


if __name__ == "__main__":
    main()
