"""``rung eval routing``: routers and cascades measured on outcome data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="evaluate routers and cascades")
    esub = p.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    r = esub.add_parser("routing", help="APGR, CPT(50%%), CPT(80%%) on RouteLLM-format data")
    r.add_argument("--data", help="outcome data directory (k-fold CV on it)")
    r.add_argument("--train", help="train on this directory ...")
    r.add_argument("--test", help="... and evaluate on this one")
    r.add_argument("--benchmark", required=True, help="mmlu or gsm8k (comma-separated)")
    r.add_argument("--folds", type=int, default=5)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--embeddings", action="store_true", help="also the MiniLM router")
    r.add_argument("--cache", default=".rung/cache", help="prompt-embedding cache")
    r.add_argument("--json", action="store_true", help="one JSON object per benchmark")
    r.add_argument("--budget", type=float, default=0.3,
                   help="also report accuracy at this share of strong calls (default 0.3)")
    r.add_argument("--report", metavar="DIR", default=None,
                   help="write routing.html (self-contained) and routing.png there")
    r.set_defaults(func=_routing)
    g = esub.add_parser("gate", help="exit 1 when a metric fell below its baseline")
    g.add_argument("--baseline", required=True, help="stored summary (JSON)")
    g.add_argument("--current", default="-", help="summary to check (JSON; - for stdin)")
    g.set_defaults(func=_gate)


def _routing(args: argparse.Namespace) -> int:
    from rung.errors import ConfigError
    from rung.eval.routing import cached_embeddings, markdown, run
    from rung.routing.data import load_outcomes, parse_benchmarks

    if bool(args.train) != bool(args.test) or bool(args.data) == bool(args.train):
        raise ConfigError("give --data DIR (k-fold CV), or --train DIR and --test DIR")
    if args.folds < 2:
        raise ConfigError("--folds must be at least 2")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if not 0.0 <= args.budget <= 1.0:
        raise ConfigError("--budget must be in [0, 1]")
    summaries, all_curves = [], []
    for name in parse_benchmarks(args.benchmark):
        train = load_outcomes(args.data or args.train, name)
        test = load_outcomes(args.test, name) if args.test else None
        emb_tr = emb_te = None
        if args.embeddings:
            emb_tr = cached_embeddings([o.prompt for o in train], Path(args.cache))
            if test is not None:
                emb_te = cached_embeddings([o.prompt for o in test], Path(args.cache))
        summary, curves = run(name, train, test, k=args.folds, seed=args.seed,
                              emb_train=emb_tr, emb_test=emb_te, budget=args.budget, log=log)
        summaries.append(summary)
        all_curves.append(curves)
        print(json.dumps(summary) if args.json else markdown(summary) + "\n", flush=True)
    if args.report:
        from rung.eval.report import write_report

        page, png = write_report(summaries, all_curves, Path(args.report),
                                 command="rung " + " ".join(sys.argv[1:]))
        log(f"report: {page} and {png}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    from rung.errors import ConfigError
    from rung.eval.gate import regressions

    def read(where: str) -> dict[str, object]:
        try:
            text = sys.stdin.read() if where == "-" else Path(where).read_text()
            data = json.loads(text.strip().splitlines()[-1] if where == "-" else text)
        except (OSError, ValueError, IndexError) as exc:
            raise ConfigError(f"cannot read a JSON summary from {where}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not a JSON object")
        return data

    problems = regressions(read(args.baseline), read(args.current))
    for line in problems:
        print(f"REGRESSION {line}")
    if not problems:
        print("gate: no metric fell below its baseline")
    return 1 if problems else 0
