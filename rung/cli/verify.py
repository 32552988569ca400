"""``rung verify``: train the learned answer verifier, and score (question, answer) pairs.

rung verify train --data DIR --benchmark gsm8k --out FILE
rung verify score FILE < pairs.jsonl   # {"prompt": ..., "response": ...} -> {"score": s}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rung.cli.router import read_field


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("verify", help="train or apply the learned verifier")
    sub = parser.add_subparsers(dest="verify_command", required=True, metavar="ACTION")

    train = sub.add_parser("train", help="fit a verifier on outcome data with weak answers")
    train.add_argument("--data", required=True, help="directory with gsm8k/")
    train.add_argument("--benchmark", default="gsm8k", help="benchmark names (gsm8k)")
    train.add_argument("--out", required=True, help="file to write the verifier to")
    train.set_defaults(func=_train)

    score = sub.add_parser("score", help="score JSON lines {'prompt','response'} from stdin")
    score.add_argument("file", help="a verifier file written by 'rung verify train'")
    score.set_defaults(func=_score)


def _train(args: argparse.Namespace) -> int:
    from rung.routing.data import load_many, parse_benchmarks
    from rung.verify.learned import train_verifier

    outcomes = load_many(args.data, parse_benchmarks(args.benchmark))
    model = train_verifier(outcomes)
    model.save(args.out)
    n_train = model.meta["n_train"]
    print(f"verifier: {n_train} answers -> {args.out}", file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    from rung.verify.learned import VerifierModel

    model = VerifierModel.load(args.file)
    for lineno, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        prompt = read_field(line, lineno, "prompt")
        response = read_field(line, lineno, "response")
        sys.stdout.write(json.dumps({"score": model.score(prompt, response)}) + "\n")
        sys.stdout.flush()
    return 0
