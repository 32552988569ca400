"""``rung eval routing``: routers and cascades measured on outcome data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rung.cli.common import config_from

if TYPE_CHECKING:
    from rung.config import Config


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
    lv = esub.add_parser("run", help="send a dataset through tiers and/or the policy, live")
    lv.add_argument("--config", default=None, help="TOML config (default: the built-in "
                    "config, as for rung serve)")
    lv.add_argument("--dataset", default=None, help="gsm8k, humaneval, mc or bfcl")
    lv.add_argument("--data", default=None, help="JSON lines file (gsm8k, mc); for bfcl the "
                    "BFCL folder or one BFCL_v4_<category>.json")
    lv.add_argument("--limit", type=int, default=None,
                    help="first N items only (bfcl: of each category)")
    lv.add_argument("--tiers", default=None,
                    help="comma-separated tier names to run pinned, or 'all'")
    lv.add_argument("--policy", action="store_true",
                    help="also run the full policy (the alias: router, cascade)")
    lv.add_argument("--out", required=True, help="run directory (resumes when it exists)")
    lv.add_argument("--seed", type=int, default=0)
    lv.add_argument("--max-tokens", type=int, default=512)
    lv.add_argument("--concurrency", type=int, default=1,
                    help="requests in flight (local tiers queue them anyway)")
    lv.add_argument("--parallel", type=int, default=None, metavar="N",
                    help="decode N requests together on every local tier (continuous "
                    "batching; raises --concurrency to 2N, N waiting, and lifts tier deadlines)")
    lv.add_argument("--manifest", default=None, metavar="FILE",
                    help="re-run an earlier run from its manifest.json (its config, "
                    "command and seed; the same model and data sha256 required) into --out, "
                    "and compare; exits 1 when a target's accuracy differs")
    lv.set_defaults(func=_live)
    jd = esub.add_parser("judge", help="LLM-as-judge scores of a run's answers, and their "
                         "agreement with the reference checks")
    jd.add_argument("--config", default=None, help="TOML config holding the judge tier")
    jd.add_argument("--judge", required=True, help="the judging tier")
    jd.add_argument("--run", required=True, help="a `rung eval run` directory")
    jd.add_argument("--rubric", default=None, help="a text file: the grading rubric")
    jd.add_argument("--target", default=None, help="only this target's answers")
    jd.add_argument("--limit", type=int, default=None)
    jd.add_argument("--out", default=None, help="write per-row scores and the summary here")
    jd.add_argument("--parallel", type=int, default=None, metavar="N",
                    help="judge N answers at once (a batched judge tier, as for `run`)")
    jd.set_defaults(func=_judge)
    rp = esub.add_parser("replay", help="logprob-gated cascades replayed from a run of "
                         "every tier (cross-fitted thresholds)")
    rp.add_argument("--run", required=True, help="a `rung eval run --tiers ...` directory")
    rp.add_argument("--tiers", required=True, help="tier names, cheapest first")
    rp.add_argument("--target", type=float, default=0.95,
                    help="share of the largest tier's accuracy to keep (default 0.95)")
    rp.add_argument("--verifier", choices=("logprob", "examples", "learned", "tools",
                                           "arithmetic"),
                    default="logprob",
                    help="gate on the answer's mean logprob; or also on the examples in its "
                    "prompt (code) run in the sandbox; or also on the answer's arithmetic "
                    "(its equations hold); or on a learned verifier's score; "
                    "or (tool calls, bfcl runs) on tool_schema and the argument values' "
                    "mean logprob")
    rp.add_argument("--verifier-model", default=None, metavar="FILE",
                    help="the `rung verify train` model, for --verifier learned")
    rp.add_argument("--thresholds", default=None, metavar="T1,T2",
                    help="fixed thresholds (one per tier but the last, e.g. a config's "
                    "min_logprob values) instead of cross-fitted ones")
    rp.add_argument("--same-items", default=None, metavar="RUN",
                    help="only the items another run answered (e.g. a --policy run)")
    rp.set_defaults(func=_replay)
    oc = esub.add_parser("outcomes", help="a run's outcome table for another pair (or "
                         "list) of tiers, for rung router train / rung eval routing")
    oc.add_argument("--run", required=True, action="append",
                    help="a `rung eval run --tiers ...` directory; give several for one "
                    "mixed table (benchmark `traffic`)")
    oc.add_argument("--tiers", required=True, help="tier names, weak first, strong last")
    oc.add_argument("--out", required=True, help="directory to write the table under")
    oc.set_defaults(func=_outcomes)
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


def _live(args: argparse.Namespace) -> int:
    import asyncio

    from rung.errors import ConfigError
    from rung.eval import datasets, live
    from rung.eval.manifest import write_manifest
    from rung.eval.outcomes import write_outcomes
    from rung.gateway import Gateway

    manifest = None
    if args.manifest:
        from rung.cli.main import build_parser
        from rung.eval import reproduce

        manifest = reproduce.read_manifest(Path(args.manifest))
        original = Path(args.manifest).parent
        if Path(args.out).resolve() == original.resolve():
            raise ConfigError("--out must be a new directory, not the run being reproduced")
        limit = args.limit
        # The effective command (what the new manifest records, so it re-runs too).
        argv = ["eval", "run", *reproduce.recorded_argv(manifest), "--out", args.out,
                *(["--limit", str(limit)] if limit is not None else [])]
        args = build_parser().parse_args(argv)
        args.argv = argv
        config = _batched(reproduce.recorded_config(manifest), args.parallel)
    elif not args.dataset:
        raise ConfigError("give --dataset NAME (or --manifest FILE to re-run a run)")
    else:
        config = _batched(config_from(args), args.parallel)
    # Batched: as many requests waiting as decoding, so a freed slot is always refilled
    # at the next step from the queue, in item order; the batches (and so the answers)
    # then do not depend on timing, and a re-run reproduces them.
    args.concurrency = max(args.concurrency, 2 * (args.parallel or 0), 1)
    names = [t.name for t in config.tiers]
    tiers = names if args.tiers == "all" else [t for t in (args.tiers or "").split(",") if t]
    unknown = [t for t in tiers if t not in names]
    if unknown:
        raise ConfigError(f"unknown tier {unknown[0]!r}; tiers: {', '.join(names)}")
    targets = [live.Target(t) for t in tiers] + ([live.Target(live.POLICY)] if args.policy
                                                 else [])
    if not targets:
        raise ConfigError("nothing to run: give --tiers and/or --policy")
    if args.max_tokens < 1 or args.concurrency < 1:
        raise ConfigError("--max-tokens and --concurrency must be at least 1")
    items, data_hash = datasets.load(args.dataset, args.data)
    items = datasets.first(items, args.limit)
    if manifest is not None:
        from rung.eval.manifest import model_hashes

        reproduce.check_inputs(manifest, models=model_hashes(config), data_hash=data_hash)
    out = Path(args.out)
    write_manifest(out, config=config, config_path=args.config, dataset=args.dataset,
                   data_hash=data_hash, n_items=len(items), seed=args.seed,
                   targets=[t.name for t in targets], max_tokens=args.max_tokens,
                   argv=args.argv)

    async def go() -> Path:
        gateway = Gateway(config)
        await gateway.start()
        try:
            return await live.run(gateway, items, targets, out, seed=args.seed,
                                  max_tokens=args.max_tokens, concurrency=args.concurrency)
        finally:
            await gateway.aclose()

    try:
        path = asyncio.run(go())
    except KeyboardInterrupt:
        print("\ninterrupted: finished items are kept; run the same command to resume",
              file=sys.stderr)
        return 130
    wanted = {i.id for i in items}
    rows = [r for r in live.load_done(path).values() if r["item"] in wanted]
    summary = live.summarize(rows, [t.name for t in targets])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = write_outcomes(rows, tiers, args.dataset, out / "outcomes")
    print(json.dumps(summary, indent=2))
    categories = live.category_table(summary)
    if categories is not None:
        print(f"accuracy per category:\n{categories}", file=sys.stderr)
    if table is not None:
        print(f"outcome table (for rung router train / rung verify train): {table.parent.parent}",
              file=sys.stderr)
    if manifest is not None:
        before = list(live.load_done(original / "items.jsonl").values())
        comparison = reproduce.compare(before, rows)
        (out / "reproduction.json").write_text(json.dumps(comparison, indent=2))
        for target, c in comparison.items():
            if c["n"]:
                print(f"{target}: {c['n']} items, accuracy {c['accuracy_before']} -> "
                      f"{c['accuracy_after']}, same text {c['same_text']:.0%}, same "
                      f"correctness {c['same_correctness']:.0%}", file=sys.stderr)
        ok = reproduce.reproduced(comparison)
        print("reproduced: every target's accuracy is the same" if ok else
              "NOT reproduced: a target's accuracy differs", file=sys.stderr)
        return 0 if ok else 1
    return 0


def _batched(config: Config, parallel: int | None) -> Config:
    """Every local tier decoding ``parallel`` requests at once, without deadlines: a
    request sharing its steps with N others is N times slower, not broken; and room for
    as many waiting. The changed config is validated like a loaded one (``--parallel``
    above a tier's ``n_batch`` is refused). ``None`` leaves the config as it is."""
    from rung.config import parse_config

    if parallel is None:
        return config
    data = config.model_dump()
    for tier in data["tiers"]:
        tier["timeout_s"] = None
        if tier["backend"]["type"] == "llama":
            tier["backend"].update(parallel=parallel, instances=1,
                                   queue_size=max(tier["backend"]["queue_size"], parallel))
    return parse_config(data)


def _judge(args: argparse.Namespace) -> int:
    import asyncio

    from rung.errors import ConfigError
    from rung.eval.judging import agreement, judge_rows
    from rung.eval.live import load_done
    from rung.gateway import Gateway

    config = _batched(config_from(args), args.parallel)
    if config.tier(args.judge) is None:
        raise ConfigError(f"no tier {args.judge!r} in the config")
    rows = [r for r in load_done(Path(args.run) / "items.jsonl").values()
            if not r.get("error") and (args.target is None or r["target"] == args.target)]
    rows.sort(key=lambda r: (r["item"], r["target"]))
    rows = rows[: args.limit] if args.limit else rows
    if not rows:
        raise ConfigError(f"no answered rows in {args.run}")
    rubric = Path(args.rubric).read_text() if args.rubric else None

    async def go() -> list[float | None]:
        gateway = Gateway(config)
        await gateway.backends[args.judge].start()
        try:
            return await judge_rows(gateway.cascade, rows, tier=args.judge, rubric=rubric,
                                    concurrency=2 * args.parallel if args.parallel else 1)
        finally:
            await gateway.aclose()

    p_yes = asyncio.run(go())
    summary = {"judge": args.judge, "run": args.run, "rubric": bool(rubric),
               "agreement": agreement(p_yes, [bool(r["correct"]) for r in rows])}
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "rows": [
            {"item": r["item"], "target": r["target"], "correct": r["correct"], "p_yes": p}
            for r, p in zip(rows, p_yes, strict=True)]}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _outcomes(args: argparse.Namespace) -> int:
    import csv

    from rung.errors import ConfigError
    from rung.eval.live import load_done
    from rung.eval.outcomes import write_outcomes

    tiers = [t for t in args.tiers.split(",") if t]
    rows, datasets = [], []
    for run in map(Path, args.run):
        manifest = json.loads((run / "manifest.json").read_text())
        missing = [t for t in tiers if t not in manifest["targets"]]
        if len(tiers) < 2 or missing:
            raise ConfigError(f"give two or more of the tiers of {run} "
                              f"({', '.join(manifest['targets'])})"
                              + (f"; not in the run: {', '.join(missing)}" if missing else ""))
        rows += list(load_done(run / "items.jsonl").values())
        datasets.append(manifest["dataset"])
    benchmark = datasets[0] if len(datasets) == 1 else "traffic"
    path = write_outcomes(rows, tiers, benchmark, Path(args.out))
    assert path is not None
    with path.open(newline="") as f:
        n = sum(1 for _ in csv.reader(f)) - 1
    print(f"{path.parent.parent}: {n} items, weak {tiers[0]}, strong {tiers[-1]}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from rung.errors import ConfigError
    from rung.eval.live import load_done
    from rung.eval.replay import replay

    rows = list(load_done(Path(args.run) / "items.jsonl").values())
    if args.same_items:
        keep = {item for item, _ in load_done(Path(args.same_items) / "items.jsonl")}
        rows = [r for r in rows if r["item"] in keep]
    try:
        thresholds = ([float(t) for t in args.thresholds.split(",")] if args.thresholds
                      else None)
    except ValueError as exc:
        raise ConfigError(f"--thresholds: numbers separated by commas ({exc})") from exc
    if args.verifier_model and not Path(args.verifier_model).is_file():
        raise ConfigError(f"verifier model file not found: {args.verifier_model}")
    tiers = [t for t in args.tiers.split(",") if t]
    try:
        result = replay(rows, tiers, target=args.target, verifier=args.verifier,
                        verifier_model=args.verifier_model, thresholds=thresholds)
    except ValueError as exc:  # the replay's own argument checks
        raise ConfigError(str(exc)) from exc
    print(json.dumps(result, indent=2, default=str))
    return 0
