"""One model's measurement for ``rung bench models``, in a process of its own so that
its peak RSS is its own: ``python -m rung.eval.model_worker SPEC.json OUT.json``.

The model is loaded as the local tier loads it; every item is answered greedily and
scored by the dataset's check; timings come from the chunks' arrival.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rung.errors import RungError
from rung.eval.models import Spec, wilson


async def _answer(backend: Any, item: Any, spec: Spec, strategy: Any) -> dict[str, Any]:
    from rung.eval import bfcl
    from rung.eval.checks import check
    from rung.eval.live import request_for
    from rung.types import ToolCallDelta, assemble_tool_calls

    if item.dataset == "traffic":
        from rung.eval import traffic

        req = traffic.request_for(item, seed=spec.seed, max_tokens=spec.max_tokens)
    else:
        req = dataclasses.replace(request_for(item, seed=spec.seed,
                                              max_tokens=spec.max_tokens), logprobs=False)
    if strategy is not None:
        from rung import ttc

        if ttc.applies(strategy, req):
            stream = ttc.run(strategy, backend.stream, req, lambda _: None)
        else:
            stream = backend.stream(req)
    else:
        stream = backend.stream(req)
    t0 = time.perf_counter()
    first: float | None = None
    streamed = False  # text came first: a tool call arrives whole, when generation ends
    text, usage, error = "", None, None
    deltas: list[ToolCallDelta] = []
    try:
        async for chunk in stream:
            if first is None and (chunk.text or chunk.tool_calls):
                first, streamed = time.perf_counter(), bool(chunk.text)
            text += chunk.text
            deltas.extend(chunk.tool_calls)
            usage = chunk.usage or usage
    except RungError as exc:  # one failed item is a wrong answer, not a failed run
        error = exc.message
    end = time.perf_counter()
    calls = assemble_tool_calls(deltas)
    if error or item.dataset == "traffic":  # traffic: judged later, by the parent
        verdict = bfcl.Result(False, "")
    else:
        verdict = await asyncio.to_thread(check, item, text, calls)
    first = first if first is not None else end
    if strategy is not None and strategy.kind == "self_consistency":
        streamed = False  # the vote's answer comes whole, after every sample: no split
    return {"item": item.id, "question": item.question, "answer": text,
            "correct": verdict.correct, "error": error,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "ttft": first - t0, "after_first": end - first, "streamed": streamed}


async def measure(spec: Spec, *, quiet: bool = False) -> dict[str, Any]:
    from rung.backends.llama import LlamaBackend
    from rung.config import CatalogConfig, LlamaBackendConfig
    from rung.eval.live import Progress
    from rung.eval.models import load_items, strategy_from_suffix

    items = load_items(spec.dataset, spec.data, spec.limit)[0]
    strategy = strategy_from_suffix(spec.strategy) if spec.strategy else None
    cfg = LlamaBackendConfig(model=spec.model, n_threads=spec.threads, n_ctx=spec.n_ctx,
                             prefix_cache=False)
    backend = LlamaBackend("bench", cfg, catalog=CatalogConfig(cache_dir=Path(spec.cache_dir)))
    t0 = time.perf_counter()
    await backend.start()
    load_s = time.perf_counter() - t0
    progress = None if quiet else Progress(len(items), 0)
    rows, loads = [], []
    try:
        for item in items:
            rows.append(await _answer(backend, item, spec, strategy))
            loads.append(os.getloadavg()[0])
            if progress is not None:
                progress.step()
    finally:
        await backend.aclose()
    if progress is not None:
        sys.stderr.write("\n")
    right = sum(r["correct"] for r in rows)
    # Speeds from streamed answers only: a tool call's first chunk is its whole answer, so
    # its time to first token includes the generation (and is reported as such). Nothing
    # streams under self-consistency (the vote's answer comes whole): its generation speed
    # is every sample's tokens over the whole time, prompts included, and it has no prompt
    # speed of its own.
    timed = [r for r in rows if r["streamed"]]
    prompt = sum(r["prompt_tokens"] for r in timed)
    ttft = sum(r["ttft"] for r in timed)
    gen = sum(max(r["completion_tokens"] - 1, 0) for r in timed)
    after = sum(r["after_first"] for r in timed)
    if not timed and strategy is not None and strategy.kind == "self_consistency":
        gen = sum(r["completion_tokens"] for r in rows)
        after = sum(r["ttft"] + r["after_first"] for r in rows)
    lo, hi = wilson(right, len(rows))
    result: dict[str, Any] = {
        "n": len(rows), "correct": right, "accuracy": round(right / len(rows), 4),
        "ci95": [round(lo, 4), round(hi, 4)],
        "prompt_tok_s": round(prompt / ttft, 2) if ttft else None,
        "gen_tok_s": round(gen / after, 2) if after else None,
        "ttft_ms": round(1000 * statistics.median(r["ttft"] for r in rows), 1),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "file_mb": round(os.path.getsize(spec.model) / 1e6, 1),
        "load_s": round(load_s, 3),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "seconds": round(sum(r["ttft"] + r["after_first"] for r in rows), 2),
        "errors": sum(1 for r in rows if r["error"]), "streamed": len(timed),
        # The machine's 1-minute load average after each item, averaged: above the thread
        # count, other work shared the cores and the speeds above are low by that much.
        "loadavg": round(statistics.mean(loads), 2) if loads else None,
    }
    if items and items[0].dataset == "traffic":  # the parent's judge scores these
        result["answers"] = [{k: r[k] for k in ("item", "question", "answer")} | {"tier": ""}
                             for r in rows if not r["error"]]
    return result


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(Path(argv[0]).read_text()))
    result = asyncio.run(measure(spec, quiet="--quiet" in argv))
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
