#!/usr/bin/env python3
"""Benchmark: a 10-step agent loop on a local tier, with prefix reuse on and off.

    .venv/bin/python bench/agent_loop_bench.py                    # embedded SmolLM2
    .venv/bin/python bench/agent_loop_bench.py --parallel 2 --steps 5

Each step resends the whole conversation (a system prompt, tool definitions, the task,
every earlier tool call and its result) and asks for the next turn with a small token
budget, as an agent framework does. The conversation is scripted, so both runs see the
same prompts whatever the model answers. Per step it prints the prompt's tokens, the
tokens actually evaluated, the request's compute seconds and its time to first chunk,
on and off side by side, then totals. ``--parallel 1`` shows llama-cpp-python's own
reuse (one sequence per model), ``--parallel 2`` the batch engine's. In-process (the
backend, no HTTP), greedy, bounded by ``--steps``, ``--max-tokens`` and ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from dataclasses import dataclass

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.types import ChatRequest, Message, ToolCall, ToolSpec


def _tool(name: str, description: str, **props: str) -> ToolSpec:
    return ToolSpec(name=name, description=description, parameters={
        "type": "object", "required": list(props),
        "properties": {k: {"type": "string", "description": v} for k, v in props.items()}})


TOOLS = (
    _tool("search_files", "Search the repository for files whose path or content matches a "
          "pattern. Returns up to 20 paths, most relevant first.",
          pattern="A glob or a regular expression.", under="A folder to search under."),
    _tool("read_file", "Read a text file of the repository and return its content with "
          "line numbers. Large files are cut at 400 lines.",
          path="The file's path, relative to the repository root.",
          start="The first line to return, 1-based."),
    _tool("edit_file", "Replace one exact, unique piece of text in a file with another.",
          path="The file's path.", old="The exact text to replace.", new="Its replacement."),
    _tool("run_tests", "Run the project's tests that match a selector and return the "
          "summary line and the first failure, if any.",
          selector="A pytest node id or -k expression."),
    _tool("run_command", "Run a shell command in the repository root with a 60 second "
          "limit and return its exit status and the last 50 lines of its output.",
          command="The command line."),
    _tool("git_diff", "Show the uncommitted changes of the working tree as a unified diff.",
          path="Limit the diff to this path."),
    _tool("web_search", "Search public documentation for a library or an error message "
          "and return the five best passages with their addresses.",
          query="A few keywords."),
    _tool("ask_user", "Ask the person who gave the task a question and wait for the answer.",
          question="The question, in one sentence."),
)
SYSTEM = ("You are a coding agent working in a Python repository. Work in small steps: find "
          "the code involved, read it, make the smallest change that does the task, run the "
          "tests that cover it, and report. Call exactly one tool per turn. Never guess a "
          "file's content: read it first. Keep the existing style; do not reformat code you "
          "did not change. When the tests pass, answer with a short summary of the change.")
TASK = ("The function parse_duration in utils/time.py accepts '1h30m' but not '90s'. Make "
        "it accept seconds too, and add a test.")
# The scripted loop: each call and the result the tool gave.
SCRIPT = [
    ("search_files", {"pattern": "def parse_duration", "under": "."},
     "utils/time.py\ntests/test_time.py"),
    ("read_file", {"path": "utils/time.py", "start": "1"},
     ("1 import re\n2 \n3 _UNIT = {'h': 3600, 'm': 60}\n4 _PART = re.compile(r'(\\d+)([hm])')"
     "\n5 \n6 def parse_duration(text: str) -> int:\n7     \"\"\"Seconds in '1h30m'.\"\"\"\n"
     "8     parts = _PART.findall(text)\n9     if not parts:\n10         raise ValueError("
     "text)\n11     return sum(int(n) * _UNIT[u] for n, u in parts)")),
    ("read_file", {"path": "tests/test_time.py", "start": "1"},
     ("1 import pytest\n2 from utils.time import parse_duration\n3 \n4 def test_hours_and_"
     "minutes():\n5     assert parse_duration('1h30m') == 5400\n6 \n7 def test_nonsense():\n"
     "8     with pytest.raises(ValueError):\n9         parse_duration('soon')")),
    ("edit_file", {"path": "utils/time.py", "old": "_UNIT = {'h': 3600, 'm': 60}",
                   "new": "_UNIT = {'h': 3600, 'm': 60, 's': 1}"}, "ok: 1 replacement"),
    ("edit_file", {"path": "utils/time.py", "old": "r'(\\d+)([hm])'",
                   "new": "r'(\\d+)([hms])'"}, "ok: 1 replacement"),
    ("run_tests", {"selector": "tests/test_time.py"}, "2 passed in 0.03s"),
    ("edit_file", {"path": "tests/test_time.py", "old": "def test_nonsense():",
                   "new": "def test_seconds():\n    assert parse_duration('90s') == 90\n\n"
                          "def test_nonsense():"}, "ok: 1 replacement"),
    ("run_tests", {"selector": "tests/test_time.py"}, "3 passed in 0.03s"),
    ("git_diff", {"path": "."},
     ("--- a/utils/time.py\n+++ b/utils/time.py\n-_UNIT = {'h': 3600, 'm': 60}\n+_UNIT = "
     "{'h': 3600, 'm': 60, 's': 1}\n-_PART = re.compile(r'(\\d+)([hm])')\n+_PART = "
     "re.compile(r'(\\d+)([hms])')\n--- a/tests/test_time.py\n+++ b/tests/test_time.py\n"
     "+def test_seconds():\n+    assert parse_duration('90s') == 90")),
]


def conversation(step: int, max_tokens: int) -> ChatRequest:
    """The request of step ``step`` (0-based): the task and the first ``step`` calls."""
    messages = [Message("system", SYSTEM), Message("user", TASK)]
    for i, (name, args, result) in enumerate(SCRIPT[:step]):
        call = ToolCall(id=f"call_{i}", name=name, arguments=json.dumps(args))
        messages += [Message("assistant", "", tool_calls=(call,)),
                     Message("tool", result, tool_call_id=call.id)]
    return ChatRequest(messages=tuple(messages), tools=TOOLS, max_tokens=max_tokens,
                       temperature=0.0)


@dataclass
class Step:
    prompt: int
    evaluated: int
    compute_s: float
    ttft_ms: float


async def loop_once(model: str, parallel: int, cache: bool, steps: int, max_tokens: int,
                    n_ctx: int) -> list[Step]:
    # more_calls off: it would send every step down the single-sequence path, and this
    # measures each path's prefix reuse
    cfg = LlamaBackendConfig(model=model, parallel=parallel, prefix_cache=cache, n_ctx=n_ctx,
                             more_calls=False)
    b = LlamaBackend("bench", cfg, catalog=CatalogConfig())
    await b.start()
    out = []
    try:
        for step in range(steps):
            before, t0, ttft = b.cached_tokens, time.perf_counter(), None
            prompt, compute = 0, 0.0
            async for c in b.stream(conversation(step, max_tokens)):
                ttft = ttft if ttft is not None else time.perf_counter() - t0
                if c.usage is not None:
                    prompt, compute = c.usage.prompt_tokens, c.compute_s or 0.0
            out.append(Step(prompt, prompt - (b.cached_tokens - before), compute,
                            1000 * (ttft or 0.0)))
    finally:
        await b.aclose()
    return out


def table(on: list[Step], off: list[Step]) -> str:
    rows = [("| step | prompt tok | evaluated on | evaluated off | compute s on | compute s "
            "off | TTFT ms on | TTFT ms off |"), "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, (a, b) in enumerate(zip(on, off, strict=True)):
        rows.append(f"| {i + 1} | {a.prompt} | {a.evaluated} | {b.evaluated} | "
                    f"{a.compute_s:.2f} | {b.compute_s:.2f} | {a.ttft_ms:.0f} | "
                    f"{b.ttft_ms:.0f} |")
    tot = [sum(s.evaluated for s in on), sum(s.evaluated for s in off),
           sum(s.compute_s for s in on), sum(s.compute_s for s in off),
           sum(s.ttft_ms for s in on), sum(s.ttft_ms for s in off)]
    rows.append(f"| total | {sum(s.prompt for s in on)} | {tot[0]} | {tot[1]} | "
                f"{tot[2]:.2f} | {tot[3]:.2f} | {tot[4]:.0f} | {tot[5]:.0f} |")
    ratio = tot[3] / tot[2] if tot[2] else float("inf")
    rows.append(f"\nprefix reuse: {tot[1] / max(tot[0], 1):.1f}x fewer tokens evaluated, "
                f"{ratio:.1f}x less compute")
    return "\n".join(rows)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--parallel", default="1,2", help="comma-separated: 1 and/or >1")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--n-ctx", type=int, default=4096, help="the last step's prompt is "
                    "~2100 tokens on SmolLM2")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for each run")
    args = ap.parse_args()
    steps = min(args.steps, len(SCRIPT) + 1)
    print(f"{args.model}, {steps} steps, max_tokens {args.max_tokens}, n_ctx {args.n_ctx}, "
          f"{platform.machine()} {platform.system()}\n")
    for p in (int(x) for x in args.parallel.split(",")):
        runs = [await asyncio.wait_for(loop_once(args.model, p, cache, steps,
                                                 args.max_tokens, args.n_ctx), args.timeout)
                for cache in (True, False)]
        print(f"### parallel = {p} ({'batch engine' if p > 1 else 'llama-cpp-python'})\n")
        print(table(*runs) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
