#!/usr/bin/env python3
"""Benchmark: router decision latency, verifier latencies, and the streaming trade-off.

    .venv/bin/python bench/cascade_bench.py [--router FILE] [--verifier FILE] [--quick]

Router and verifier models come from `rung router train` / `rung verify train`; pass
them to include the learned ones. Everything runs in-process on the embedded model and
on loopback servers; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rung.types import Answer, ChatRequest, Chunk, Message, ResponseFormat

GSM = ROOT.parent / "shared" / "data" / "routellm" / "gsm8k" / "test.jsonl"


def questions(n: int) -> list[str]:
    if GSM.exists():
        with GSM.open() as f:
            return [json.loads(line)["question"] for line, _ in zip(f, range(n), strict=False)]
    return [f"What is {i} + {i * 7}?" for i in range(n)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def router_rows(args: argparse.Namespace, qs: list[str]) -> list[tuple[str, list[float]]]:
    from rung.routing.scorers import HeuristicScorer, LearnedScorer, RandomScorer

    reqs = [ChatRequest(messages=(Message("user", q),)) for q in qs]
    scorers: list[tuple[str, Any]] = [("heuristic", HeuristicScorer()),
                                      ("random", RandomScorer(0))]
    if args.router:
        scorers.append((f"learned ({Path(args.router).name})", LearnedScorer(Path(args.router))))
    rows = []
    for name, scorer in scorers:
        scorer.score(reqs[0])  # warm caches (model loading is not a decision)
        lat: list[float] = []
        for r in reqs:
            lat += timed(lambda r=r, sc=scorer: sc.score(r), 1)
        rows.append((name, lat))
    return rows


async def verifier_rows(args: argparse.Namespace, qs: list[str]) -> list[tuple[str, list[float]]]:
    from rung.cascade import Cascade
    from rung.config import parse_config
    from rung.gateway import Gateway
    from rung.verify.registry import build_verifier

    cfg = parse_config({"tiers": [{"name": "small", "backend": {"type": "llama"}},
                                  {"name": "x", "backend": {"type": "llama"}}]})
    gw = Gateway(cfg)
    small = gw.backends["small"]
    await small.start()
    cascade: Cascade = gw.cascade
    specs: list[dict[str, Any]] = [{"type": "json"}, {"type": "logprob"},
                                   {"type": "judge"}, {"type": "self_consistency",
                                                       "samples": 3}]
    if args.verifier:
        specs.append({"type": "learned", "path": args.verifier})
    from pydantic import TypeAdapter

    from rung.config import VerifierConfig

    adapter: TypeAdapter[Any] = TypeAdapter(VerifierConfig)
    rows = []
    answers = []
    for q in qs[: args.n_model]:
        req = ChatRequest(messages=(Message("user", q),), max_tokens=128, temperature=0,
                          logprobs=True, response_format=ResponseFormat("text"))
        answers.append((req, await cascade.generate("small", req)))
    for spec in specs:
        v = build_verifier(adapter.validate_python(spec))
        lat = []
        for req, ans in answers:
            t = time.perf_counter()
            await v.verify(req, ans, cascade.generate)
            lat.append((time.perf_counter() - t) * 1000)
        rows.append((spec["type"], lat))
    await gw.aclose()
    rows.append(("examples (HumanEval code, sandboxed run)", await examples_latency(args.n_model)))
    return rows


async def examples_latency(n: int) -> list[float]:
    """The examples verifier on HumanEval prompts that give examples, each answered with its
    canonical solution (the sandboxed run costs the same whoever wrote the code)."""
    from rung.eval import datasets
    from rung.verify.examples import ExamplesVerifier, parse_examples

    v = ExamplesVerifier()
    lat = []
    for item in datasets.load("humaneval")[0]:
        if not parse_examples(item.prompt):
            continue
        req = ChatRequest(messages=(Message("user", item.prompt),), max_tokens=1)
        ans = Answer(tier="x", chunks=[Chunk(text="```python\n" + item.extra["code_prompt"]
                                             + item.extra["canonical_solution"] + "```")])
        t = time.perf_counter()
        verdict = await v.verify(req, ans, _no_generate)
        lat.append((time.perf_counter() - t) * 1000)
        assert verdict.score is not None
        if len(lat) == n:
            break
    return lat


async def _no_generate(tier: str, request: ChatRequest) -> Answer:
    raise AssertionError("the examples verifier generates nothing")


async def ttft_rows(qs: list[str], n: int) -> list[tuple[str, list[float]]]:
    """Time to first text chunk through the gateway: verified (buffered) vs streamed."""
    from rung.config import parse_config
    from rung.gateway import Gateway

    rows = []
    for name, unverified in (("verified: buffer, verify, then stream", False),
                             ("stream_unverified = true", True)):
        cfg = parse_config({
            "routing": {"stream_unverified": unverified},
            "tiers": [{"name": "small", "backend": {"type": "llama"},
                       "verifiers": [{"type": "logprob", "min_logprob": -100.0}]},
                      {"name": "big", "backend": {"type": "openai",
                                                  "base_url": "http://127.0.0.1:9/v1",
                                                  "model": "unused"}}]})
        gw = Gateway(cfg)
        await gw.backends["small"].start()
        lat = []
        for i, q in enumerate(qs[:n]):
            req = ChatRequest(messages=(Message("user", f"{i}. {q}"),), max_tokens=128,
                              temperature=0, stream=True)
            t = time.perf_counter()
            first = None
            async for chunk in gw.reply("rung", req):
                if first is None and chunk.text:
                    first = (time.perf_counter() - t) * 1000
            lat.append(first or 0.0)
        await gw.aclose()
        rows.append((name, lat))
    return rows


def table(title: str, rows: list[tuple[str, list[float]]]) -> str:
    lines = [f"| {title} | n | p50 ms | p99 ms | mean ms |", "|---|---|---|---|---|"]
    for name, lat in rows:
        lines.append(f"| {name} | {len(lat)} | {pct(lat, .5):.3f} | {pct(lat, .99):.3f} | "
                     f"{statistics.mean(lat):.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--router", default=None, help="router model file")
    p.add_argument("--verifier", default=None, help="verifier model file")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    args.n_model = 5 if args.quick else 20
    qs = questions(200 if args.quick else 1000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("### Router decision latency (one GSM8K question per call)\n")
    print(table("scorer", router_rows(args, qs)))
    print(f"\n### Verifier latency on SmolLM2-135M answers ({args.n_model} GSM8K questions, "
          "128 tokens max; judge and self-consistency generate on the same model)\n")
    print(table("verifier", asyncio.run(verifier_rows(args, qs))))
    print(f"\n### Time to first token, SmolLM2-135M tier ({args.n_model} GSM8K questions, "
          "128 tokens max)\n")
    print(table("streaming mode", asyncio.run(ttft_rows(qs, args.n_model))))


if __name__ == "__main__":
    main()
