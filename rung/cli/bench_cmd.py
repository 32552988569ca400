"""``rung bench models``: models side by side on a dataset (:mod:`rung.eval.models`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from rung.cli.common import add_config_arg, config_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="measure models side by side")
    bsub = p.add_subparsers(dest="bench_command", required=True, metavar="ACTION")
    m = bsub.add_parser("models", help="accuracy, speed, memory and KL divergence of "
                        "several models on one dataset, each in its own process")
    add_config_arg(m)
    m.add_argument("--models", required=True, metavar="A,B,...",
                   help="catalogue names, .gguf paths or hf: references; MODEL+STRATEGY "
                   "(e.g. qwen2.5-coder-0.5b+sc8) answers with a test-time-compute strategy")
    m.add_argument("--dataset", required=True, help="gsm8k, humaneval, mc or bfcl; or "
                   "traffic (or a FILE.jsonl): your own requests, as `rung traces export` "
                   "writes them, scored by --judge")
    m.add_argument("--data", default=None, help="JSON lines file (gsm8k, mc, traffic); for "
                   "bfcl the BFCL folder or one BFCL_v4_<category>.json")
    m.add_argument("--judge", default=None, metavar="TIER",
                   help="the tier of --config that judges traffic answers right or wrong")
    m.add_argument("--limit", type=int, default=None,
                   help="first N items only (bfcl: of each category)")
    m.add_argument("--reference", default=None, metavar="MODEL",
                   help="measure each model's KL divergence and top-1 agreement against "
                   "this one, on the dataset's own text")
    m.add_argument("--max-tokens", type=int, default=384)
    m.add_argument("--threads", type=int, default=2, help="llama.cpp threads per model")
    m.add_argument("--kl-tokens", type=int, default=1024,
                   help="tokens of the dataset's text for the KL columns (default 1024)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.add_argument("--report", default=None, metavar="DIR",
                   help="write models.html (self-contained) and models.png (Pareto fronts)")
    m.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    from rung.errors import ConfigError
    from rung.eval.models import bench, markdown, parse_candidate

    candidates = [parse_candidate(t) for t in args.models.split(",") if t.strip()]
    if not candidates:
        raise ConfigError("--models needs at least one model")
    config = config_from(args)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = bench(candidates, dataset=args.dataset, data=args.data, limit=args.limit,
                   reference=args.reference, catalog=config.catalog,
                   max_tokens=args.max_tokens, threads=args.threads, seed=args.seed,
                   kl_tokens=args.kl_tokens, progress=True,
                   judge=(config, args.judge) if args.judge else None,
                   log=log)
    command = "rung " + shlex.join(args.argv)
    result["command"] = command
    if args.report:
        from pathlib import Path

        from rung.eval.models_report import write_report

        page, png = write_report(result, Path(args.report), command=command)
        log(f"report: {page} and {png}")
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0
