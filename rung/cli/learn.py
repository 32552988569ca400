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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.cli.common import add_config_arg, config_from
from rung.config import ScorerConfig
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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _seen_until(scorer: ScorerConfig) -> float:
    """The newest label the router in use was learned from: the traffic after it is what
    that router never saw. -inf for a scorer not learned by rung learn (the heuristic, or a
    router trained elsewhere)."""
    from rung.routing.promoted import PROMOTED
    from rung.routing.promoted import read as read_promoted

    folder = scorer.path
    if scorer.type != "learned" or folder is None or not (folder / PROMOTED).is_file():
        return float("-inf")
    state = read_promoted(folder)
    try:
        report = json.loads((folder / "versions" / state["version"] / "report.json")
                            .read_text())
        return float(report["trained_until"])
    except (OSError, ValueError, KeyError, TypeError):  # no record: when it was promoted
        return (folder / PROMOTED).stat().st_mtime


def run(args: argparse.Namespace) -> int:
    if args.rollback:
        from rung.routing.promoted import rollback

        state = rollback(Path(args.out))
        print(json.dumps({"promoted": state["version"], "path": state["path"]}))
        return 0
    from rung.routing.memo import remembered

    with remembered():  # the same prompts are tokenised for every fold's fit and scores
        return _learn(args)


def _learn(args: argparse.Namespace) -> int:
    from rung import learning
    from rung.routing.heads import HeadsRouter, train_heads
    from rung.routing.scorers import build_scorer
    from rung.store.base import open_store

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
    on_first = [lb for lb in found if lb.side == "first"]
    failures = sum(not lb.ok for lb in on_first)
    sources = {s: sum(lb.source == s for lb in on_first) for s in ("feedback", "shadow",
                                                                    "verifier")}
    sources_stronger = {s: sum(lb.source == s and lb.side == "next" for lb in found)
                        for s in ("feedback", "shadow")}
    report: dict[str, Any] = {
        "labelled": len(on_first), "labelled_stronger": len(found) - len(on_first),
        "failures": failures, "sources": sources, "sources_stronger": sources_stronger,
        "first_tier": first, "version": version,
        "created": time.time(), "router": {"apgr": None},
        "current": {"scorer": config.routing.scorer.type}, "promoted": False}
    seen = _seen_until(config.routing.scorer)
    unseen = [i for i, lb in enumerate(found) if lb.time > seen]
    held = [found[i] for i in unseen]  # both sides' labels the router in use never saw
    held_first = [lb for lb in held if lb.side == "first"]
    if len(on_first) < 3 * learning.MIN_HOLDOUT or failures in (0, len(on_first)):
        report["reason"] = (f"too few labels to learn and check a router: {len(on_first)} "
                            f"about {first}, {failures} of them failures; needs at least "
                            f"{3 * learning.MIN_HOLDOUT} with failures and successes")
        _write(out, version, report, None)
        print(f"rung learn: {report['reason']}", file=sys.stderr)
        return 1

    def fit(labels: Sequence[learning.Label]) -> HeadsRouter:
        return train_heads(learning.pairs(labels, "first"), learning.pairs(labels, "next"))

    oof = learning.cross_fitted(found, fit, folds=CV_FOLDS, seed=args.seed)
    final = fit(found)
    final.meta["version"] = version
    first_idx = [i for i, lb in enumerate(found) if lb.side == "first"]
    report["router"] = {
        "apgr_cv": None if oof is None else round(learning.apgr_of(oof[first_idx], on_first), 4),
        "held_back": len(held), "trained_on": len(found),
        "kind": "heads (TF-IDF + logistic regression per side)",
        "implied": final.meta["implied"]}
    report["trained_until"] = found[-1].time
    report["rule"] = ("promoted when the ranking quality of the candidate's cross-fitted "
                      "scores on the labels the router in use never saw beats that router's "
                      "by more than the paired 95% interval (rung.learning)")
    if oof is None or len(held_first) < learning.MIN_HOLDOUT \
            or len({lb.ok for lb in held_first}) < 2:
        report["router"]["apgr"] = None
        report["reason"] = (f"{len(held_first)} labels about {first} since the router in use "
                            f"was learned; needs {learning.MIN_HOLDOUT}, with failures and "
                            "successes, to compare: not promoted")
        _write(out, version, report, final)
        print(json.dumps({k: report[k] for k in ("labelled", "router", "promoted",
                                                 "reason")}))
        return 0
    scorer = build_scorer(config.routing.scorer)
    new_all = oof[unseen]
    cur_all = learning.current_scores(scorer, held)
    first_mask = [i for i, lb in enumerate(held) if lb.side == "first"]
    diff, lo, hi = learning.paired_interval(new_all, cur_all, held, seed=args.seed)
    promoted = lo > 0
    report["router"]["apgr"] = round(learning.apgr_of(new_all[first_mask], held_first), 4)
    report.update({
        "current": {"scorer": config.routing.scorer.type,
                    "apgr": round(learning.apgr_of(cur_all[first_mask], held_first), 4),
                    "ranking": _round(learning.ranking_quality(cur_all, held))},
        "difference": {"ranking": round(diff, 4), "ci95": [round(lo, 4), round(hi, 4)]},
        "promoted": promoted})
    report["router"]["ranking"] = _round(learning.ranking_quality(new_all, held))
    folder = _write(out, version, report, final)
    if promoted:
        from rung.routing.promoted import promote

        promote(out, version, str((folder / "router.npz").relative_to(out)))
    print(json.dumps({k: report[k] for k in ("labelled", "router", "current", "difference",
                                             "promoted")}))
    return 0
