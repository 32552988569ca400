#!/usr/bin/env python3
"""Benchmark: what tool calling adds.

1. Parsing and verifying a call, in-process: the text of each BFCL dev-split ground-truth
   call (simple_python, multiple, parallel), as a local model writes it (``<tool_call>``
   blocks), fed to the stream parser in 4-character pieces, then checked by
   ``tool_schema`` against the item's own tools; beside it, prose of the same length
   through the parser (what a text answer pays when tools are offered).
2. Time to the first tool-call delta when streaming, through ``rung serve``: an instant
   upstream that calls a tool, direct vs through rung (the relay's added latency); and the
   embedded model making a forced call (its first delta vs its whole answer).

    .venv/bin/python bench/tool_bench.py            # full size (about a minute)
    .venv/bin/python bench/tool_bench.py --quick

Everything runs on loopback, side by side in one run, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import RUNG, free_port, pct, start

ROOT = Path(__file__).resolve().parents[1]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def _calls_text(case: Any) -> str:
    """The ground truth's calls, first allowed value of each argument, as tagged blocks."""
    from rung.eval.bfcl import tool_name

    blocks = []
    for call in case.ground_truth:
        for name, params in call.items():
            args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
            blocks.append("<tool_call>\n" + json.dumps({"name": tool_name(name),
                                                         "arguments": args}) + "\n</tool_call>")
    return "\n".join(blocks)


def parse_and_verify(repeat: int) -> list[list[str]]:
    from rung.eval.bfcl import load
    from rung.tools.parse import CallReader
    from rung.verify.tools import _validator, call_problem

    cases = [c for cat in ("simple_python", "multiple", "parallel")
             for c in load(BFCL / f"BFCL_v4_{cat}.json")[0]]
    parse_us: list[float] = []
    verify_us: list[float] = []
    again_us: list[float] = []
    prose_us: list[float] = []
    valid = 0
    for _ in range(repeat):
        for case in cases:
            text = _calls_text(case)
            pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
            prose = ("The weather is fine today and " * (len(text) // 30 + 1))[:len(text)]
            prose_pieces = [prose[i:i + 4] for i in range(0, len(prose), 4)]
            t0 = time.perf_counter()
            reader = CallReader()
            calls = []
            for p in pieces:
                calls += reader.push(p)[1]
            calls += reader.finish()[1]
            _validator.cache_clear()  # first sight of this item's tools
            t1 = time.perf_counter()
            specs = {t.name: t for t in case.tools}
            ok = all(call_problem(c, specs) is None for c in calls)
            t2 = time.perf_counter()
            all(call_problem(c, specs) is None for c in calls)  # the agent's next step
            t2b = time.perf_counter()
            reader = CallReader()
            for p in prose_pieces:
                reader.push(p)
            reader.finish()
            t3 = time.perf_counter()
            parse_us.append((t1 - t0) * 1e6)
            verify_us.append((t2 - t1) * 1e6)
            again_us.append((t2b - t2) * 1e6)
            prose_us.append((t3 - t2b) * 1e6)
            valid += ok
    n = len(parse_us)
    total = [a + b for a, b in zip(parse_us, again_us, strict=True)]
    rows = [["parse the call(s), 4-char pieces", *_p(parse_us)],
            ["tool_schema, the tools' schemas first seen", *_p(verify_us)],
            ["tool_schema, schemas seen before (an agent's next step)", *_p(again_us)],
            ["parse + verify (schemas seen before)", *_p(total)],
            ["prose of the same length through the parser", *_p(prose_us)]]
    print(f"\n{n} answers ({len(cases)} BFCL ground truths x {repeat}); "
          f"{valid / n:.1%} pass tool_schema")
    return rows


def _p(values: list[float]) -> list[str]:
    return [f"{pct(values, 0.5):.0f} us", f"{pct(values, 0.99):.0f} us"]


async def first_delta(url: str, model: str, n: int, *, forced: bool,
                      max_tokens: int = 48) -> tuple[list[float], list[float]]:
    """(time to the first tool-call delta, time to the end) of ``n`` streamed requests."""
    body: dict[str, Any] = {"model": model, "stream": True, "temperature": 0,
                            "max_tokens": max_tokens, "tools": [WEATHER],
                            "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    if forced:
        body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    firsts, ends = [], []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t0 = time.perf_counter()
            first = None
            async with s.post(f"{url}/v1/chat/completions", json=body) as r:
                assert r.status == 200, await r.text()
                async for raw in r.content:
                    if first is None and raw.startswith(b"data: {") and b"tool_calls" in raw:
                        data = json.loads(raw[6:])
                        if data["choices"] and data["choices"][0]["delta"].get("tool_calls"):
                            first = time.perf_counter()
            ends.append((time.perf_counter() - t0) * 1000)
            assert first is not None, "no tool-call delta"
            firsts.append((first - t0) * 1000)
    return firsts, ends


def streaming(n_up: int, n_local: int) -> list[list[str]]:
    up_port, rung_port = free_port(), free_port()
    upstream = start([sys.executable, "-m", "rung.devtools.upstream", "--port", str(up_port),
                      "--tool-call", 'get_weather:{"city": "Paris"}'],
                     f"http://127.0.0.1:{up_port}/v1/models")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench.toml"
        cfg.write_text(f"""
[[tiers]]
name = "smollm2-135m"
backend = {{ type = "llama", model = "smollm2-135m", n_threads = 2 }}

[[tiers]]
name = "upstream"
ladder = false
backend = {{ type = "openai", base_url = "http://127.0.0.1:{up_port}/v1", model = "m" }}
""")
        env = dict(os.environ, RUNG_LOG_LEVEL="warning")
        gateway = start([*RUNG, "serve", "--config", str(cfg), "--port", str(rung_port),
                         "--store", f"sqlite:///{tmp}/traces.db"],
                        f"http://127.0.0.1:{rung_port}/readyz", env=env, timeout=300)
        try:
            rows = []
            up, gw = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{rung_port}"
            asyncio.run(first_delta(up, "m", 20, forced=False))  # warm-up
            asyncio.run(first_delta(gw, "upstream", 20, forced=False))
            direct, _ = asyncio.run(first_delta(up, "m", n_up, forced=False))
            through, _ = asyncio.run(first_delta(gw, "upstream", n_up, forced=False))
            rows.append(["upstream direct", str(n_up), *_ms(direct), "-"])
            rows.append(["upstream through rung", str(n_up), *_ms(through), "-"])
            rows.append(["rung's added time to first delta", "",
                         f"+{pct(through, 0.5) - pct(direct, 0.5):.2f} ms",
                         f"+{pct(through, 0.99) - pct(direct, 0.99):.2f} ms", "-"])
            asyncio.run(first_delta(gw, "smollm2-135m", 1, forced=True))  # load, warm
            local, ends = asyncio.run(first_delta(gw, "smollm2-135m", n_local, forced=True))
            rows.append(["embedded SmolLM2, forced call", str(n_local), *_ms(local),
                         f"{pct(ends, 0.5):.0f} ms"])
            return rows
        finally:
            for p in (gateway, upstream):
                p.terminate()
                p.wait(timeout=30)


def _ms(values: list[float]) -> list[str]:
    return [f"{pct(values, 0.5):.2f} ms", f"{pct(values, 0.99):.2f} ms"]


def table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = parse_and_verify(1 if args.quick else 3)
    table(["step", "p50", "p99"], rows)
    print()
    rows = streaming(50 if args.quick else 300, 3 if args.quick else 10)
    table(["time to first tool-call delta (streamed)", "n", "p50", "p99", "whole answer p50"],
          rows)


if __name__ == "__main__":
    main()
