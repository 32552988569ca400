"""``rung learn``: a router learned from this gateway's own labelled traffic, promoted only
when it beats the router in use (rung.learning says how labels are read and when a router
is promoted).

    rung learn --config CFG --store URL --out DIR

writes ``DIR/router.npz`` (for ``rung router score`` and ``routing.scorer = {type =
"learned", path = ...}``) and ``DIR/report.json`` (``labelled``, ``router.apgr`` and its
cross-validated and held-back figures, ``current``, ``promoted``), a copy of both under
``DIR/versions/<data hash>/``, and, when promoted, ``DIR/promoted.json`` naming that version
(``routing.scorer = {type = "learned", path = "DIR"}`` serves it, and picks up the next
promotion without a restart). ``rung learn --out DIR --rollback`` promotes the previous
version again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rung.cli.common import add_config_arg, config_from
from rung.errors import ConfigError

CV_FOLDS = 5


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("learn", help="learn a router from this gateway's labelled traffic "
                       "(feedback, verdicts); promote it only when it beats the one in use")
    add_config_arg(p)
    p.add_argument("--store", default=None, metavar="URL",
                   help="trace store (default: the config's store.url)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the router and report go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rollback", action="store_true",
                   help="learn nothing: promote the version promoted before the current one "
                   "again (a server serving DIR picks it up within a second)")
    p.set_defaults(func=run)


def _write(out: Path, version: str, report: dict[str, Any], model: Any | None) -> Path:
    folder = out / "versions" / version
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        model.save(folder / "router.npz")
        shutil.copyfile(folder / "router.npz", out / "router.npz")
    text = json.dumps(report, indent=2)
    (folder / "report.json").write_text(text + "\n")
    (out / "report.json").write_text(text + "\n")
    return folder


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rung import learning
    from rung.eval.routing import cross_val, fit_router
    from rung.routing.learned import train_router
    from rung.routing.scorers import build_scorer
    from rung.store.base import open_store

    if args.rollback:
        from rung.routing.promoted import rollback

        state = rollback(Path(args.out))
        print(json.dumps({"promoted": state["version"], "path": state["path"]}))
        return 0
    config = config_from(args)
    ladder = config.ladder_tiers
    if len(ladder) < 2:
        raise ConfigError("rung learn needs a config with two or more ladder tiers")
    first = ladder[0].name
    store = open_store(args.store or config.store.url)
    try:
        found = learning.labels(store.query(), store.feedback(), first)
    finally:
        store.close()
    out = Path(args.out)
    version = learning.data_hash(found)[:12]
    failures = sum(not lb.ok for lb in found)
    sources = {s: sum(lb.source == s for lb in found) for s in ("feedback", "shadow", "verifier")}
    report: dict[str, Any] = {
        "labelled": len(found), "failures": failures, "sources": sources, "first_tier": first,
        "version": version, "created": time.time(), "router": {"apgr": None},
        "current": {"scorer": config.routing.scorer.type}, "promoted": False}
    older, held = learning.split(found)
    if len(older) < 2 * learning.MIN_HOLDOUT or not any(not lb.ok for lb in older) \
            or all(not lb.ok for lb in held) or all(lb.ok for lb in held):
        report["reason"] = (f"too few labels to learn and check a router: {len(found)} "
                            f"labelled, {failures} of them failures of {first}; needs at "
                            f"least {3 * learning.MIN_HOLDOUT} with failures and successes "
                            "in both the older and the most recent part")
        _write(out, version, report, None)
        print(f"rung learn: {report['reason']}", file=sys.stderr)
        return 1
    outcomes = [lb.outcome() for lb in found]
    ok = np.array([lb.ok for lb in found])
    oof = cross_val(outcomes, CV_FOLDS, args.seed, fit_router(embeddings=False, seed=args.seed),
                    None)
    candidate = train_router([lb.outcome() for lb in older], use_embeddings=False,
                             seed=args.seed)
    new = candidate.score_batch([lb.prompt for lb in held])
    cur = learning.current_scores(build_scorer(config.routing.scorer), held)
    diff, lo, hi = learning.paired_interval(new, cur, held, seed=args.seed)
    promoted = lo > 0
    final = train_router(outcomes, use_embeddings=False, seed=args.seed)
    final.meta["version"] = version
    report.update({
        "router": {"apgr": round(learning.apgr_of(new, held), 4),
                   "apgr_cv": round(learning.apgr_of(oof, found), 4) if not ok.all() else None,
                   "held_back": len(held), "trained_on": len(older)},
        "current": {"scorer": config.routing.scorer.type,
                    "apgr": round(learning.apgr_of(cur, held), 4)},
        "difference": {"apgr": round(diff, 4), "ci95": [round(lo, 4), round(hi, 4)]},
        "promoted": promoted,
        "rule": "promoted when the held-back APGR difference's 95% interval is above 0"})
    folder = _write(out, version, report, final)
    if promoted:
        from rung.routing.promoted import promote

        promote(out, version, str((folder / "router.npz").relative_to(out)))
    print(json.dumps({k: report[k] for k in ("labelled", "router", "current", "difference",
                                             "promoted")}))
    return 0
