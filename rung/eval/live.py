"""Live evaluation: send a dataset through tiers (each pinned) and/or the full policy,
score every answer with its verifiable check, and keep everything per item.

Results go to ``OUT/items.jsonl``, one line per (item, target), flushed as each finishes,
so a killed or interrupted run loses at most the items in flight and resumes where it
stopped. ``OUT/manifest.json`` records what is needed to reproduce the numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rung.errors import RungError
from rung.eval import bfcl
from rung.eval.checks import check
from rung.eval.datasets import Item
from rung.eval.replay import seconds_of
from rung.gateway import Gateway
from rung.types import (
    ChatRequest,
    Message,
    TokenLogprob,
    ToolCallDelta,
    ToolChoice,
    assemble_tool_calls,
)
from rung.verify.relevance import ToolRelevanceVerifier
from rung.verify.tools import ToolSchemaVerifier, value_tokens

POLICY = "policy"


@dataclass(frozen=True)
class Target:
    """A tier pinned by name, or ``policy``: the alias through router and cascade."""

    name: str


def load_done(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished (item, target) rows of an earlier run; a torn last line is ignored."""
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[(row["item"], row["target"])] = row
    return done


def request_for(item: Item, *, seed: int, max_tokens: int) -> ChatRequest:
    """Greedy and seeded; a tool-calling item sends its conversation and tools, the model
    free to call any or none of them."""
    # Logprobs are asked for so that logprob-gated cascades can be replayed offline from
    # pinned runs (rung.eval.replay); they do not change the greedy answer.
    if item.case is not None:
        tools = item.case.tools
        return ChatRequest(messages=item.case.messages, max_tokens=max_tokens,
                           temperature=0.0, seed=seed, logprobs=True, tools=tools,
                           tool_choice=ToolChoice("auto") if tools else None)
    return ChatRequest(messages=(Message("user", item.prompt),), max_tokens=max_tokens,
                       temperature=0.0, seed=seed, logprobs=True)


async def answer_one(gateway: Gateway, item: Item, target: Target, *, seed: int,
                     max_tokens: int) -> dict[str, Any]:
    model = gateway.config.alias if target.name == POLICY else target.name
    req = request_for(item, seed=seed, max_tokens=max_tokens)
    t0 = time.perf_counter()
    text, usage, error, compute, finish = "", None, None, None, None
    toks: list[TokenLogprob] = []
    deltas: list[ToolCallDelta] = []
    reply = gateway.reply(model, req)
    try:
        async for chunk in reply:
            text += chunk.text
            usage = chunk.usage or usage
            compute = chunk.compute_s if chunk.compute_s is not None else compute
            finish = chunk.finish_reason or finish
            toks.extend(chunk.logprobs)
            deltas.extend(chunk.tool_calls)
    except RungError as exc:
        error = exc.message
    finally:
        await reply.aclose()
    seconds = time.perf_counter() - t0
    route = reply.route
    calls = assemble_tool_calls(deltas)
    lps = [t.logprob for t in toks]
    verdict = (bfcl.Result(False, "") if error else
               await asyncio.to_thread(check, item, text, calls))
    row = {
        "item": item.id, "target": target.name, "question": item.question,
        "answer": text, "correct": verdict.correct, "error": error, "tier": route.tier,
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        # Wall time from the client's side; with concurrent requests on a batched tier it
        # includes the others' share, so throughput is measured on ``compute_s``: a tier's
        # own compute, or for the policy the local compute of every tier it tried.
        "seconds": round(seconds, 4),
        "compute_s": _compute(route.compute_s if target.name == POLICY else compute),
        "cost": route.cost, "score": route.score,
        "escalations": route.escalations, "route": route.as_dict(),
        "mean_logprob": round(sum(lps) / len(lps), 5) if lps else None,
        "min_logprob": round(min(lps), 5) if lps else None,
    }
    if item.category:
        row["category"] = item.category
    if item.case is not None:
        row["tool_calls"] = [c.as_dict() for c in calls]
        row["why"] = verdict.why or error
        # What the tool verifiers would see, so their cascades replay offline.
        row["finish_reason"] = finish
        row["schema_ok"] = ToolSchemaVerifier().judge(req, calls, text, finish).accept
        row["relevance_ok"] = ToolRelevanceVerifier().judge(req, calls).accept
        values = [t.logprob for t in value_tokens(toks)] if calls else []
        row["arg_logprob"] = round(sum(values) / len(values), 5) if values else None
    return row


def _compute(seconds: float | None) -> float | None:
    return round(seconds, 4) if seconds is not None else None


class Progress:
    """One stderr line: done/total, rate and ETA."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.t0 = time.monotonic()

    def step(self) -> None:
        self.done += 1
        rate = (self.done - self.start_done) / max(time.monotonic() - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        sys.stderr.write(f"\r{self.done}/{self.total} {rate:.2f} items/s ETA "
                         f"{eta / 60:.1f} min ")
        sys.stderr.flush()


async def run(gateway: Gateway, items: Sequence[Item], targets: Sequence[Target], out: Path,
              *, seed: int, max_tokens: int, concurrency: int,
              on_row: Callable[[dict[str, Any]], None] = lambda _: None) -> Path:
    """Answer every (item, target) not already in ``out/items.jsonl``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "items.jsonl"
    done = load_done(path)
    # Target by target, so that concurrent requests fill one tier's batch at a time.
    todo = [(i, t) for t in targets for i in items if (i.id, t.name) not in done]
    progress = Progress(len(items) * len(targets), len(done))
    sem = asyncio.Semaphore(concurrency)
    with path.open("a") as f:
        async def one(item: Item, target: Target) -> None:
            async with sem:
                row = await answer_one(gateway, item, target, seed=seed,
                                       max_tokens=max_tokens)
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
            on_row(row)
            progress.step()

        await asyncio.gather(*(one(i, t) for i, t in todo))
    sys.stderr.write("\n")
    return path


def summarize(rows: Sequence[dict[str, Any]], targets: Sequence[str]) -> dict[str, Any]:
    """Per target: accuracy, tokens, throughput, seconds and cost per item."""
    out: dict[str, Any] = {}
    for t in targets:
        rs = [r for r in rows if r["target"] == t]
        if not rs:
            continue
        # Compute seconds where local backends reported them (a pinned tier's own, the
        # policy's over every tier it tried), else wall time (upstream tiers).
        secs = sum(seconds_of(r) for r in rs)
        toks = sum(r["completion_tokens"] for r in rs)
        out[t] = {"n": len(rs), "accuracy": round(sum(r["correct"] for r in rs) / len(rs), 4),
                  "completion_tokens": toks, "tokens_per_s": round(toks / secs, 2) if secs else 0,
                  "seconds_per_item": round(secs / len(rs), 3),
                  "cost": round(sum(r["cost"] for r in rs), 6),
                  "errors": sum(1 for r in rs if r["error"])}
        answered = [r["tier"] for r in rs if r["tier"]]
        if t == POLICY and answered:
            out[t]["answered_by"] = {x: answered.count(x) for x in sorted(set(answered))}
        if any(r.get("category") for r in rs):
            out[t]["categories"] = by_category(rs)
    return out


def by_category(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Items and accuracy per category (a dataset's subsets, e.g. BFCL's), in the order
    the categories first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get("category") or ""), []).append(r)
    return {c: {"n": len(rs), "accuracy": round(sum(bool(r["correct"]) for r in rs) / len(rs),
                                                4)}
            for c, rs in groups.items()}


def category_table(summary: dict[str, Any]) -> str | None:
    """A markdown table of accuracy per category (rows) and target (columns), or None
    when the summary has no categories."""
    targets = [t for t, s in summary.items() if "categories" in s]
    if not targets:
        return None
    categories = list(dict.fromkeys(c for t in targets for c in summary[t]["categories"]))
    lines = ["| category | n | " + " | ".join(targets) + " |",
             "|---|---:|" + "---:|" * len(targets)]
    for c in categories:
        cells = [summary[t]["categories"].get(c) for t in targets]
        n = next(x["n"] for x in cells if x is not None)
        lines.append(f"| {c} | {n} | " + " | ".join(
            f"{x['accuracy']:.3f}" if x is not None else "" for x in cells) + " |")
    lines.append("| all | | " + " | ".join(f"{summary[t]['accuracy']:.3f}" for t in targets)
                 + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "cpu": cpu}
