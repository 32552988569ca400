"""``rung prompts test``: a prompt version against another (or against itself on another
config: "same prompt, new model") on a dataset, side by side, as a CI gate.

Each row of the dataset fills the version's variables and says how to check the answer:
``exact``, ``regex``, ``json_schema``, ``number`` (the final number, as GSM8K is checked),
``judge`` (a tier asked whether the answer is right; P(yes) >= 0.5), or, for a dataset of
``rung.eval`` (``gsm8k``, ``mc``, ``humaneval``, read with ``--data``), the dataset's own
check (numbers, letters, the unit tests run in the sandbox). Both sides answer every row
through the policy (the alias: router and cascade) or ``--tier``, in-process, greedy
(temperature 0 unless the version sets one). The table gives each side's accuracy with
its 95% Wilson interval, cost, latency and the share answered by the cheapest tier, and
the paired difference A - B with its 95% interval; the command exits 1 when A is worse
than B beyond that interval (the interval's upper end is below 0).

The model files' sha256 of each side's config are recorded (``--json``), so a run with
``--against-config`` compares one prompt on two models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rung.errors import ConfigError, RungError

CHECKS = ("exact", "regex", "json_schema", "number", "judge")


def register(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from rung.cli.common import add_config_arg

    p = psub.add_parser("test", help="run a dataset through version A (and B), print them "
                        "side by side; exit 1 when A is worse than B beyond the interval")
    p.add_argument("a", metavar="NAME@A", help="the version under test (NAME@LABEL, "
                   "NAME@VERSION or NAME)")
    p.add_argument("--against", default=None, metavar="NAME@B",
                   help="the version to beat (default: A itself, with --against-config)")
    p.add_argument("--dataset", required=True, metavar="FILE",
                   help="JSON lines of {variables, check} (check: exact, regex, "
                   "json_schema, number or judge), or a rung.eval dataset: gsm8k, mc, "
                   "humaneval (its question fills the variable 'question')")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="the file of a rung.eval dataset (e.g. ../shared/data/routellm/"
                   "gsm8k/test.jsonl)")
    add_config_arg(p)
    p.add_argument("--against-config", default=None, metavar="FILE",
                   help="B's config (default: --config): the same prompt on another model")
    p.add_argument("--store", default=None, metavar="URL",
                   help="store holding the prompts (default: config store.url)")
    p.add_argument("--tier", default=None, help="pin every request to this tier (default: "
                   "the policy, or the version's own [config] tier)")
    p.add_argument("--limit", type=int, default=None, help="the first N rows")
    p.add_argument("--max-tokens", type=int, default=512,
                   help="max_tokens where the version sets none")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write every row, both summaries and the model hashes here")
    p.set_defaults(func=_test)


@dataclass(frozen=True, slots=True)
class Row:
    """One dataset row: what fills the variables, and how its answer is checked."""

    id: str
    variables: dict[str, Any]
    check: dict[str, Any]
    item: Any = None  # a rung.eval Item, checked by its dataset's own check


def load_rows(dataset: str, data: str | None, limit: int | None) -> list[Row]:
    from rung.eval.datasets import DATASETS
    from rung.eval.datasets import load as load_dataset

    if dataset in DATASETS or dataset == "humaneval":
        items, _ = load_dataset(dataset, data)
        return [Row(it.id, {"question": it.question}, {}, it) for it in items[:limit]]
    rows = []
    try:
        lines = open(dataset).read().splitlines()  # noqa: SIM115 - small, read whole
    except OSError as exc:
        raise ConfigError(f"cannot read {dataset}: {exc.strerror or exc}") from exc
    for i, line in enumerate(x for x in lines if x.strip()):
        r = json.loads(line)
        check = r.get("check")
        if not isinstance(check, dict) or len(check) != 1 or next(iter(check)) not in CHECKS:
            raise ConfigError(f"{dataset} row {i + 1}: 'check' must be one of "
                              f"{', '.join(CHECKS)}, e.g. {{\"number\": \"42\"}}")
        rows.append(Row(str(r.get("id", i)), dict(r.get("variables") or {}), check))
    return rows[:limit]


def passes(row: Row, answer: str) -> bool | None:
    """The row's check on an answer; None for a judge check (asked apart)."""
    if row.item is not None:
        from rung.eval.checks import is_correct

        return is_correct(row.item, answer)
    kind, want = next(iter(row.check.items()))
    if kind == "exact":
        return answer.strip() == str(want).strip()
    if kind == "regex":
        return re.search(str(want), answer) is not None
    if kind == "number":
        from rung.verify.final import final_number

        return final_number(answer) == final_number(str(want))
    if kind == "json_schema":
        import jsonschema

        try:
            jsonschema.validate(json.loads(answer), want)
        except (ValueError, jsonschema.ValidationError):
            return False
        return True
    return None


@dataclass
class Side:
    """One side of the comparison: a version on a config, and its answers."""

    label: str  # what the table calls it: "gsm@2"
    config_path: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    cheapest: str = ""

    def summary(self) -> dict[str, Any]:
        from rung.eval.models import wilson
        from rung.store.analytics import percentiles

        n = len(self.rows)
        right = sum(bool(r["correct"]) for r in self.rows)
        lo, hi = wilson(right, n)
        ok = [r for r in self.rows if r["error"] is None]
        return {"version": self.label, "n": n, "accuracy": right / n if n else None,
                "accuracy_95": [lo, hi],
                "cost": sum(r["cost"] for r in self.rows),
                "cost_per_request": sum(r["cost"] for r in self.rows) / n if n else None,
                "latency_ms": percentiles([r["ms"] for r in ok]),
                "small_share": sum(r["tier"] == self.cheapest for r in ok) / len(ok)
                if ok else None,
                "escalation_rate": sum(r["escalated"] for r in ok) / len(ok) if ok else None,
                # was the small tier right when its answer passed the verifiers?
                "small_right": [sum(bool(r["correct"]) for r in ok if r["tier"] == self.cheapest),
                                sum(r["tier"] == self.cheapest for r in ok)],
                "errors": n - len(ok), "models": self.hashes}


def paired(a: Sequence[bool], b: Sequence[bool], z: float = 1.96) -> tuple[float, float, float]:
    """The mean of A - B over paired rows and its 95% interval (normal approximation of
    the per-row differences, each -1, 0 or 1)."""
    d = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    n = len(d)
    if n == 0:
        return 0.0, -1.0, 1.0
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 1.0
    half = z * math.sqrt(var / n) if var > 0 else z / n  # all equal: a width of one row
    return mean, max(-1.0, mean - half), min(1.0, mean + half)


async def _run_side(side: Side, ref_text: str, rows: Sequence[Row], *, store_url: str | None,
                    tier: str | None, max_tokens: int) -> None:
    from rung.cli.common import config_from
    from rung.eval.manifest import model_hashes
    from rung.gateway import Gateway
    from rung.prompts.apply import apply_prompt
    from rung.prompts.cache import PromptCache
    from rung.store.prompts import open_prompts
    from rung.types import ChatRequest

    config = config_from(argparse.Namespace(config=side.config_path))
    url = store_url or config.store.url
    cache = PromptCache(lambda: open_prompts(url), timeout_s=30.0)
    side.hashes = model_hashes(config)
    side.cheapest = config.ladder_tiers[0].name
    gateway = Gateway(config)
    await gateway.start()
    judge_tier = None
    try:
        for i, row in enumerate(rows):
            used = await apply_prompt(cache, ref_text, row.variables,
                                      ChatRequest(messages=()), pin=tier, thresholds=None,
                                      who=row.id)
            req = used.request
            req = replace(req, temperature=0.0 if req.temperature is None else req.temperature,
                          seed=0, max_tokens=req.max_tokens or max_tokens)
            side.label = f"{used.prompt['name']}@{used.prompt['version']}"
            t0 = time.perf_counter()
            text, error = "", None
            reply = gateway.reply(config.alias, req, pin=used.pin, thresholds=used.thresholds)
            try:
                async for chunk in reply:
                    text += chunk.text
            except RungError as exc:
                error = exc.message
            finally:
                await reply.aclose()
            route = reply.route
            correct = False if error else await asyncio.to_thread(passes, row, text)
            if correct is None:
                judge_tier = str(row.check["judge"])
                correct = await _judged(gateway, req, text, judge_tier)
            side.rows.append({"id": row.id, "answer": text, "correct": bool(correct),
                              "error": error, "tier": route.tier, "cost": route.cost,
                              "escalated": route.escalated,
                              "ms": (time.perf_counter() - t0) * 1000,
                              "prompt": used.prompt})
            print(f"\r{side.label}: {i + 1}/{len(rows)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        await gateway.aclose()
        cache.close()


async def _judged(gateway: Any, req: Any, text: str, tier: str) -> bool:
    from rung.types import Answer, Chunk
    from rung.verify.judge import JudgeVerifier

    verdict = await JudgeVerifier(tier=tier, min_yes=0.5).verify(
        req, Answer(tier="", chunks=[Chunk(text=text)]), gateway.cascade.generate)
    return verdict.accept


def table(a: dict[str, Any], b: dict[str, Any], diff: tuple[float, float, float]) -> str:
    def acc(s: dict[str, Any]) -> str:
        lo, hi = s["accuracy_95"]
        return f"{s['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]" if s["n"] else "-"

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"
    mean, lo, hi = diff
    lines = [("", a["version"], b["version"], "A - B [95%]"),
             ("rows", str(a["n"]), str(b["n"]), ""),
             ("accuracy [95%]", acc(a), acc(b), f"{mean:+.3f} [{lo:+.2f}, {hi:+.2f}]"),
             ("cost / request", f"{a['cost_per_request'] or 0:.6f}",
              f"{b['cost_per_request'] or 0:.6f}", ""),
             ("latency p50 ms", ms(a["latency_ms"]["p50"]), ms(b["latency_ms"]["p50"]), ""),
             ("latency p99 ms", ms(a["latency_ms"]["p99"]), ms(b["latency_ms"]["p99"]), ""),
             ("answered by small tier", pct(a["small_share"]), pct(b["small_share"]), ""),
             ("small tier right", "{}/{}".format(*a["small_right"]),
              "{}/{}".format(*b["small_right"]), ""),
             ("escalation rate", pct(a["escalation_rate"]), pct(b["escalation_rate"]), ""),
             ("errors", str(a["errors"]), str(b["errors"]), "")]
    w = [max(len(r[i]) for r in lines) for i in range(4)]
    out = [" | ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in lines]
    out.insert(1, "-+-".join("-" * x for x in w))
    return "\n".join(out)


def _test(args: argparse.Namespace) -> int:
    against = args.against or args.a
    if against == args.a and args.against_config in (None, args.config):
        raise ConfigError("nothing to compare: give --against NAME@B, or --against-config "
                          "for the same prompt on another model")
    rows = load_rows(args.dataset, args.data, args.limit)
    if not rows:
        raise ConfigError(f"{args.dataset} has no rows")
    a = Side(args.a, args.config)
    b = Side(against, args.against_config or args.config)

    async def run() -> None:
        for side, ref in ((a, args.a), (b, against)):
            await _run_side(side, ref, rows, store_url=args.store, tier=args.tier,
                            max_tokens=args.max_tokens)
    asyncio.run(run())
    sa, sb = a.summary(), b.summary()
    diff = paired([r["correct"] for r in a.rows], [r["correct"] for r in b.rows])
    print(table(sa, sb, diff))
    for s in (sa, sb):
        if s["models"]:
            print(f"{s['version']} models: " + ", ".join(
                f"{t} sha256:{h[:16]}" for t, h in s["models"].items()))
    worse = diff[2] < 0
    verdict = (f"A is worse than B: accuracy {diff[0]:+.3f}, interval [{diff[1]:+.3f}, "
               f"{diff[2]:+.3f}] below 0" if worse else
               "A is not worse than B beyond the interval")
    print(verdict)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": sa, "b": sb, "diff": {"mean": diff[0], "lo": diff[1],
                                                 "hi": diff[2]}, "worse": worse,
                       "rows": {"a": a.rows, "b": b.rows}, "argv": getattr(args, "argv", None)},
                      f, indent=1)
    return 1 if worse else 0
