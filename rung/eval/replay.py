"""Replay logprob-gated cascades offline from pinned per-tier runs.

A run of every tier on every item (``rung eval run --tiers all``) records each answer's
correctness, seconds and mean token logprob, which is all a logprob-gated cascade looks
at: tier i's answer is accepted when its mean logprob is at least ``t_i``, else the next
tier answers, and the compute is the sum of the tiers tried. So thresholds can be chosen
without re-running the models. To keep the numbers honest they are cross-fitted: the
thresholds are chosen on one half of the items and measured on the other, and the halves
are swapped.

With ``verifier="examples"`` an answer must also reproduce the examples its prompt gives
(:mod:`rung.verify.examples`, run in the sandbox on the recorded answer); the logprob
threshold may then be ``-inf``, i.e. the examples check alone. With ``verifier="learned"``
the thresholds are on a learned verifier's score of (question, answer) instead of the
logprob (``rung verify train``; its model may come from other data, e.g. RouteLLM's).
With ``verifier="tools"`` (tool-calling runs, BFCL's) a call must pass ``tool_schema``
(and ``tool_relevance`` where the run recorded it) and the thresholds are on ``tool_logprob``'s statistic, the mean logprob of the argument
values (an answer with no call has nothing to doubt: it passes both, as live).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

Row = dict[str, Any]


def seconds_of(row: Row) -> float:
    """The compute an answer took: what a local backend attributed to it (batched steps
    shared among their requests), else its wall time."""
    c = row.get("compute_s")
    return float(c) if c is not None else float(row["seconds"])


def by_item(rows: Sequence[Row], tiers: Sequence[str]) -> list[list[Row]]:
    """Items answered by every tier (each a list of rows in tier order)."""
    table: dict[str, dict[str, Row]] = {}
    for r in rows:
        table.setdefault(r["item"], {})[r["target"]] = r
    return [[per[t] for t in tiers] for per in table.values()
            if all(t in per and per[t].get("mean_logprob") is not None for t in tiers)]


def annotate_examples(rows: Sequence[Row], *, workers: int = 2) -> None:
    """Set ``examples_pass`` on each row: does its answer reproduce its prompt's examples
    (True when the prompt gives none)."""
    from rung.verify.examples import check_examples

    def one(row: Row) -> None:
        result = check_examples(str(row.get("question") or ""), str(row.get("answer") or ""))
        row["gate"] = result.failed == 0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, rows))


def annotate_tools(rows: Sequence[Row]) -> None:
    """Set ``gate`` (the calls pass ``tool_schema`` and, where the run recorded it,
    ``tool_relevance``) and ``confidence`` (the mean argument logprob, 0 when the answer
    made no call) from what a bfcl run recorded."""
    for r in rows:
        r["gate"] = bool(r.get("schema_ok", True)) and bool(r.get("relevance_ok", True))
        lp = r.get("arg_logprob")
        r["confidence"] = float(lp) if lp is not None else 0.0


def annotate_arithmetic(rows: Sequence[Row]) -> None:
    """Set ``gate``: the answer's equations hold (and a bare-expression question gets its
    value), as the ``arithmetic`` verifier checks."""
    from rung.types import ChatRequest, Message
    from rung.verify.arithmetic import check

    for r in rows:
        ask = ChatRequest(messages=(Message("user", str(r.get("question") or "")),))
        r["gate"] = check(ask, str(r.get("answer") or "")).accept


def annotate_learned(rows: Sequence[Row], path: str) -> None:
    """Set ``confidence`` on each row: minus the learned verifier's escalation score."""
    from rung.verify.learned import VerifierModel

    model = VerifierModel.load(path)
    scores = model.score_batch([str(r.get("question") or "") for r in rows],
                               [str(r.get("answer") or "") for r in rows])
    for r, sc in zip(rows, scores, strict=True):
        r["confidence"] = -float(sc)


def confidence(row: Row) -> float:
    """What the thresholds cut: a verifier's confidence if set, else the mean logprob."""
    value = row["confidence"] if "confidence" in row else row["mean_logprob"]
    return float(value)


def _accepts(row: Row, threshold: float) -> bool:
    return confidence(row) >= threshold and bool(row.get("gate", True))


def cascade(rows: Sequence[Row], thresholds: Sequence[float]) -> tuple[bool, float]:
    """(right, seconds) of one item through the cascade with these thresholds."""
    seconds = 0.0
    for i, r in enumerate(rows):
        seconds += seconds_of(r)
        if i == len(rows) - 1 or _accepts(r, thresholds[i]):
            return bool(r["correct"]), seconds
    return False, seconds


def simulate(items: Sequence[list[Row]], thresholds: Sequence[float]) -> tuple[float, float]:
    """(accuracy, total seconds) of the cascade with these thresholds."""
    correct, seconds = 0, 0.0
    for rows in items:
        right, secs = cascade(rows, thresholds)
        correct += right
        seconds += secs
    return correct / len(items), seconds


def per_category(items: Sequence[list[Row]], tiers: Sequence[str],
                 cascade_right: dict[str, bool]) -> dict[str, dict[str, Any]]:
    """Accuracy per category (rows with a ``category``, e.g. BFCL's) of each tier and of
    the replayed cascade (``cascade_right``: item -> its answer was right)."""
    groups: dict[str, list[list[Row]]] = {}
    for rows in items:
        groups.setdefault(str(rows[0].get("category") or ""), []).append(rows)

    def share(hits: Sequence[bool]) -> float:
        return round(sum(hits) / len(hits), 4)

    return {c: {"n": len(g),
                "tiers": {t: share([bool(rows[i]["correct"]) for rows in g])
                          for i, t in enumerate(tiers)},
                "cascade": share([cascade_right[rows[0]["item"]] for rows in g])}
            for c, g in groups.items()}


def oracles(items: Sequence[list[Row]]) -> dict[str, dict[str, float]]:
    """Upper bounds with perfect knowledge of which tier is right on each item.

    ``cascade``: a perfect verifier; tiers are tried cheapest first and the first right
    answer is kept, paying for every tier tried. ``router``: a perfect router; each item
    goes straight to the cheapest tier that gets it right (or the cheapest tier when none
    does), paying for that tier only. No real cascade or router can beat either, so when
    the router bound cannot keep the target accuracy within a compute budget, no policy
    over these tiers can."""
    out = {}
    for name in ("cascade", "router"):
        correct, seconds = 0, 0.0
        for rows in items:
            hit = next((i for i, r in enumerate(rows) if r["correct"]), None)
            correct += hit is not None
            if name == "cascade":
                stop = hit if hit is not None else len(rows) - 1
                seconds += sum(seconds_of(r) for r in rows[: stop + 1])
            else:
                seconds += seconds_of(rows[hit if hit is not None else 0])
        out[name] = {"accuracy": correct / len(items), "seconds": seconds}
    return out


def _largest_accuracy(items: Sequence[list[Row]]) -> float:
    return sum(bool(rows[-1]["correct"]) for rows in items) / len(items)


def choose(items: Sequence[list[Row]], *, target: float, grid: int = 15) -> list[float]:
    """The cheapest thresholds whose accuracy reaches ``target`` x the last tier's."""
    k = len(items[0])
    best_acc = _largest_accuracy(items)
    cands = []
    for i in range(k - 1):
        values = sorted(confidence(rows[i]) for rows in items)
        qs = {values[min(len(values) - 1, int(q * len(values)))] for q in
              (j / grid for j in range(grid + 1))}
        cands.append(sorted(qs | {float("-inf"), float("inf")}))
    best: tuple[float, list[float]] | None = None
    for th in itertools.product(*cands):
        acc, secs = simulate(items, th)
        if acc >= target * best_acc and (best is None or secs < best[0]):
            best = (secs, list(th))
    return best[1] if best is not None else [float("inf")] * (k - 1)


def replay(rows: Sequence[Row], tiers: Sequence[str], *, target: float = 0.95,
           seed: int = 0,
           verifier: Literal["logprob", "examples", "learned", "tools", "arithmetic"] = "logprob",
           verifier_model: str | None = None,
           thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """Replayed cascade with cross-fitted thresholds, or with fixed ``thresholds`` (one
    per tier but the last: what a config's verifiers use) on every item; broken down
    per category when the rows have one (BFCL's)."""
    if thresholds is not None and len(thresholds) != len(tiers) - 1:
        raise ValueError(f"{len(tiers) - 1} thresholds needed, one per tier but the last")
    if verifier == "learned" and verifier_model is None:
        raise ValueError("the learned verifier needs its model file (--verifier-model)")
    items = by_item(rows, tiers)
    if len(items) < 4:
        return {"n": len(items), "error": "too few items answered by every tier"}
    gated = [r for rows_ in items for r in rows_[:-1]]
    if verifier == "examples":
        annotate_examples(gated)
    elif verifier == "tools":
        annotate_tools(gated)
    elif verifier == "arithmetic":
        annotate_arithmetic(gated)
    elif verifier == "learned":
        assert verifier_model is not None
        annotate_learned(gated, verifier_model)
    largest_acc = _largest_accuracy(items)
    largest_s = sum(seconds_of(rows[-1]) for rows in items)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    halves = [[items[i] for i in order[: len(order) // 2]],
              [items[i] for i in order[len(order) // 2:]]]
    correct = seconds = 0.0
    chosen: list[list[float]] = []
    splits = ([(halves[0], halves[1]), (halves[1], halves[0])] if thresholds is None
              else [(items, items)])
    cascade_right: dict[str, bool] = {}
    for fit, test in splits:
        th = choose(fit, target=target) if thresholds is None else list(thresholds)
        chosen.append(th)
        for rows_ in test:
            right, secs = cascade(rows_, th)
            cascade_right[rows_[0]["item"]] = right
            correct += right
            seconds += secs
    cut = {"learned": "the learned verifier's score",
           "tools": "the mean logprob of argument values"}.get(verifier, "mean token logprob")
    bounds = {k: {"accuracy": round(v["accuracy"], 4),
                  "seconds_per_item": round(v["seconds"] / len(items), 3),
                  "compute_vs_largest": round(v["seconds"] / largest_s, 4)}
              for k, v in oracles(items).items()}
    per_tier = {t: {"accuracy": round(sum(bool(r[i]["correct"]) for r in items) / len(items), 4),
                    "seconds_per_item": round(sum(seconds_of(r[i]) for r in items) / len(items),
                                              3)}
                for i, t in enumerate(tiers)}
    categories = ({"categories": per_category(items, tiers, cascade_right)}
                  if any(rows_[0].get("category") for rows_ in items) else {})
    return {
        "n": len(items), "tiers": per_tier,
        "always_largest": {"accuracy": round(largest_acc, 4),
                           "seconds_per_item": round(largest_s / len(items), 3)},
        "cascade": {"accuracy": round(correct / len(items), 4),
                    "seconds_per_item": round(seconds / len(items), 3),
                    "accuracy_vs_largest": round(correct / len(items) / largest_acc, 4)
                    if largest_acc else None,
                    "compute_vs_largest": round(seconds / largest_s, 4),
                    "thresholds_per_half": chosen},
        "oracle_cascade": bounds["cascade"], "oracle_router": bounds["router"],
        "verifier": verifier,
        "protocol": (f"fixed thresholds on {cut}, every item" if thresholds is not None
                     else f"thresholds on {cut} chosen on one half (cheapest reaching "
                     f"{target:.0%} of the largest tier's accuracy), measured on the other")
                    + {"examples": "; an answer must also pass its prompt's examples",
                       "arithmetic": "; an answer's equations must also hold",
                       "tools": "; a call must also pass tool_schema"}.get(verifier, ""),
        **categories,
    }
