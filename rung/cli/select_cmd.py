"""``rung select``: the cheapest benched candidate that meets a target."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rung.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("select", help="the cheapest candidate of a `rung bench models` run "
                       "that meets a target, with its tier config")
    p.add_argument("bench", type=Path, metavar="FILE",
                   help="`rung bench models --json` output")
    p.add_argument("--min-accuracy", type=float, default=None, metavar="X",
                   help="accuracy floor in [0, 1]")
    p.add_argument("--lower-bound", action="store_true",
                   help="hold the 95%% interval's lower end to --min-accuracy, not the "
                   "point estimate")
    p.add_argument("--max-ms", type=float, default=None, help="mean ms per answer, at most")
    p.add_argument("--max-mb", type=float, default=None, help="peak RSS in MB, at most")
    p.add_argument("--json", action="store_true", help="print the choice as JSON")
    p.set_defaults(func=_select)


def _select(args: argparse.Namespace) -> int:
    from rung.select import Target, rows_of, select, tier_toml

    try:
        result = json.loads(args.bench.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the bench result {args.bench}: {exc}") from exc
    choice = select(rows_of(result), Target(min_accuracy=args.min_accuracy,
                                            max_ms=args.max_ms, max_mb=args.max_mb,
                                            lower_bound=args.lower_bound))
    if args.json:
        print(json.dumps({
            "chosen": choice.chosen.name if choice.chosen else None,
            "tier": tier_toml(choice.chosen) if choice.chosen else None,
            "rejected": [{"model": r.name, "why": why} for r, why in choice.rejected]},
            indent=2))
        return 0 if choice.chosen else 1
    for row, why in choice.rejected:
        print(f"rejected {row.name} ({row.ms:.0f} ms/answer, {row.mb:.0f} MB): "
              + "; ".join(why))
    if choice.chosen is None:
        print("rung: no candidate meets the target", flush=True)
        return 1
    c = choice.chosen
    print(f"chosen   {c.name}: accuracy {c.accuracy:.3f} (95% CI {c.ci95[0]:.3f}-"
          f"{c.ci95[1]:.3f}), {c.ms:.0f} ms/answer, {c.mb:.0f} MB\n")
    print(tier_toml(c))
    return 0
