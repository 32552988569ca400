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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _cv_apgr(found: list[Any], folds: int, seed: int) -> float | None:
    """APGR on the first tier's labels of routers fitted on the other folds."""
    import numpy as np

    from rung import learning
    from rung.routing.heads import train_heads

    first = [lb for lb in found if lb.side == "first"]
    if all(lb.ok for lb in first) or len(first) < 2 * folds:
        return None
    order = np.random.default_rng(seed).permutation(len(found))
    scores: dict[str, float] = {}
    for k in range(folds):
        test = [found[i] for i in order[k::folds]]
        train = [found[i] for j, i in enumerate(order) if j % folds != k]
        if not learning.pairs(train, "first"):
            return None
        model = train_heads(learning.pairs(train, "first"), learning.pairs(train, "next"))
        for lb in test:
            if lb.side == "first":
                scores[lb.trace_id] = model.score(lb.prompt)
    return learning.apgr_of(np.array([scores[lb.trace_id] for lb in first]), first)


def run(args: argparse.Namespace) -> int:
    from rung import learning
    from rung.routing.heads import train_heads
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
    older, held = learning.split(on_first)
    if len(older) < 2 * learning.MIN_HOLDOUT or not any(not lb.ok for lb in older) \
            or all(not lb.ok for lb in held) or all(lb.ok for lb in held):
        report["reason"] = (f"too few labels to learn and check a router: {len(on_first)} "
                            f"about {first}, {failures} of them failures; needs at least "
                            f"{3 * learning.MIN_HOLDOUT} with failures and successes in both "
                            "the older and the most recent part")
        _write(out, version, report, None)
        print(f"rung learn: {report['reason']}", file=sys.stderr)
        return 1
    cutoff = held[0].time
    before = [lb for lb in found if lb.time < cutoff]
    recent = [lb for lb in found if lb.time >= cutoff]  # both sides' held-back labels
    candidate = train_heads(learning.pairs(before, "first"), learning.pairs(before, "next"))
    scorer = build_scorer(config.routing.scorer)
    new_all = candidate.score_batch([lb.prompt for lb in recent])
    cur_all = learning.current_scores(scorer, recent)
    first_mask = [i for i, lb in enumerate(recent) if lb.side == "first"]
    new, cur = new_all[first_mask], cur_all[first_mask]
    diff, lo, hi = learning.paired_interval(new_all, cur_all, recent, seed=args.seed)
    promoted = lo > 0
    final = train_heads(learning.pairs(found, "first"), learning.pairs(found, "next"))
    final.meta["version"] = version
    cv = _cv_apgr(list(found), CV_FOLDS, args.seed)
    report.update({
        "router": {"apgr": round(learning.apgr_of(new, held), 4),
                   "apgr_cv": round(cv, 4) if cv is not None else None,
                   "held_back": len(recent), "trained_on": len(before),
                   "kind": "heads (TF-IDF + logistic regression per side)",
                   "implied": final.meta["implied"]},
        "current": {"scorer": config.routing.scorer.type,
                    "apgr": round(learning.apgr_of(cur, held), 4),
                    "ranking": _round(learning.ranking_quality(cur_all, recent))},
        "difference": {"ranking": round(diff, 4), "ci95": [round(lo, 4), round(hi, 4)]},
        "promoted": promoted,
        "rule": "promoted when the held-back ranking quality's paired 95% interval of the "
                "difference is above 0 (rung.learning)"})
    report["router"]["ranking"] = _round(learning.ranking_quality(new_all, recent))
    folder = _write(out, version, report, final)
    if promoted:
        from rung.routing.promoted import promote

        promote(out, version, str((folder / "router.npz").relative_to(out)))
    print(json.dumps({k: report[k] for k in ("labelled", "router", "current", "difference",
                                             "promoted")}))
    return 0
