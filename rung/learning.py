"""Learning a router from rung's own traffic: labels from traces, a candidate router, and
the promotion rule.

**Labels are one-sided.** A trace says how the tier that answered did (user feedback), or
that the first tier's answer was rejected (a verifier's verdict); never how another tier
would have done. So each label is about one side of the ladder, and the router
(:mod:`rung.routing.heads`) fits one head per side on that side's labels. About the first
tier:

- answered by the first tier, with feedback: right when the mean feedback score is at
  least 0.5, else wrong (source ``feedback``; without a user's feedback, the shadow
  comparisons' ``routing.shadow`` stored, source ``shadow``);
- the first tier's answer rejected by a verifier: wrong (source ``verifier``); accepted by
  its verifiers and answered, without feedback: right (source ``verifier``). Feedback on
  the same trace overrides the verdict;
- a trace that never reached the first tier (routed past it) says nothing about it,
  unless a downward shadow (``routing.shadow.down``: the first tier answered the same
  request again, source ``shadow_first``) compared the two answers: then the first tier
  was right when it agreed with the answer given and wrong when it disagreed, where no
  user rated that answer; where a user did, right when it agreed with a right answer,
  wrong when it agreed with a wrong one or disagreed with a right one, and nothing when
  it disagreed with a wrong one (both may be wrong, or the first tier right). Those
  are the prompts the router in use sends higher: without downward shadows these labels
  under-represent them (a learned router then splits topics between the sides and never
  learns how the first tier does on those it sends up). A router learned here is
  compared with the one in use on labelled traffic whose sides the router in use chose,
  which favours that router (measured in docs/learning.md): promotion errs on the side
  of keeping it.

About the stronger side (``side = "next"``): a user's feedback on an answer of any tier
above the first; and a shadow comparison (``routing.shadow``: a stronger tier answered
the same request again) of a first-tier answer a user rated: the stronger tier was right
when it agreed with a right answer or disagreed with a wrong one (source ``shadow``; the
second is an approximation, as two wrong answers may differ; a shadow without a rating
says nothing about the stronger side).

How well a router orders prompts is measured on both sides' labels: on the first tier's,
a higher score should mean a failure (AUC of the score for "the first tier failed"); on
the stronger side's, a higher score should mean the stronger tier succeeds (escalating a
prompt nobody answers well gains nothing: AUC for "the stronger tier was right"). Where
a request has both sides' outcomes (a rated answer and a shadow's comparison: ``other``),
the AUCs count what escalating it gains: a first-tier failure the stronger tier also
failed, or a stronger-tier success the first tier also had, is no gain. The
**ranking quality** is the mean of the sides' AUCs that have both outcomes, and it is what
promotion compares. (APGR on the first tier's labels, each taken as an outcome row whose
stronger side is right, is reported too.)

**Promotion.** The candidate is compared with the router in use on the labels that router
never saw: those newer than the labels it was learned from (all of them for a scorer
rung learn did not train, such as the heuristic). The candidate's scores there are
cross-fitted (:func:`cross_fitted`: each label scored by a router fitted on the other
folds, all older labels included, never on its own prompt), so every such label counts
as held back, and the comparison gains power as traffic accrues since the last promotion
instead of resting on a fixed recent slice. It is promoted only when its ranking quality
there beats the router in use by more than the 95% bootstrap interval of the paired
difference (its lower end above zero). The router written is fitted on every label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rung.routing.metrics import evaluate
from rung.routing.scorers import Scorer
from rung.routing.steps import read_step
from rung.store.feedback import SHADOW, SHADOW_FIRST, Feedback
from rung.store.trace import Trace
from rung.types import ChatRequest
from rung.types import Outcome as AttemptOutcome

MIN_HOLDOUT = 20  # labels about the first tier a comparison needs, at least
GOOD = 0.5  # a mean feedback score at or above this is "right"


@dataclass(frozen=True, slots=True)
class Label:
    trace_id: str
    time: float
    request: ChatRequest  # what the router saw
    ok: bool  # did the tier answer it well
    source: Literal["feedback", "shadow", "verifier"]
    side: Literal["first", "next"] = "first"  # which side of the ladder it is about
    other: bool | None = None  # the other side's outcome on the same request, when known

    @property
    def prompt(self) -> str:
        return read_step(self.request).text


def _request(t: Trace) -> ChatRequest | None:
    msgs = t.conversation  # none when redacted: nothing to learn the prompt from
    return ChatRequest(messages=msgs) if msgs else None


def _good(scores: list[float]) -> bool:
    """Whether feedback scores say "right": their mean at least GOOD."""
    return sum(scores) / len(scores) >= GOOD


def shadowed_first(rated: list[float] | None, shadowed: list[float] | None) -> bool | None:
    """What a downward shadow says about the first tier (None: nothing)."""
    if not shadowed:
        return None
    agreed = _good(shadowed)
    if not rated:
        return agreed
    if _good(rated):
        return agreed
    return False if agreed else None


def labels(traces: Iterable[Trace], feedback: Iterable[Feedback], first: str) -> list[Label]:
    """The labels about tier ``first`` that ``traces`` and their ``feedback`` give, oldest
    first (see the module docstring for the rules)."""
    users: dict[str, list[float]] = {}
    shadows: dict[str, list[float]] = {}
    downs: dict[str, list[float]] = {}
    for fb in feedback:
        by = {SHADOW: shadows, SHADOW_FIRST: downs}.get(fb.source, users)
        by.setdefault(fb.trace_id, []).append(fb.score)
    out = []
    for t in traces:
        if t.status != "ok":
            continue
        request = _request(t)
        if request is None:
            continue
        rated, shadowed = users.get(t.id), shadows.get(t.id)
        attempts = t.route.get("attempts") or []
        mine = next((a for a in attempts if a.get("tier") == first), None)
        # a downward shadow of a request that never reached the first tier
        down = shadowed_first(rated, downs.get(t.id)) if mine is None else None
        if t.tier != first and rated:
            out.append(Label(t.id, t.time, request, _good(rated), "feedback", "next",
                             other=down))
        if mine is None:  # never reached the first tier: only a downward shadow says
            if down is not None:
                out.append(Label(t.id, t.time, request, down, "shadow",
                                 other=_good(rated) if rated else None))
            continue
        said, source = (rated, "feedback") if rated else (shadowed, "shadow")
        paired = None
        if t.tier == first and rated and shadowed:  # a paired outcome
            paired = _good(rated) == _good(shadowed)
            out.append(Label(t.id, t.time, request, paired, "shadow", "next",
                             other=_good(rated)))
        if t.tier == first and said:
            ok = _good(said)
        elif mine.get("outcome") == AttemptOutcome.REJECTED.value:
            ok, source = False, "verifier"
        elif t.tier == first and mine.get("verdicts"):
            ok, source = True, "verifier"
        else:
            continue  # answered unverified and unrated, or failed: no label
        out.append(Label(t.id, t.time, request, ok, source,  # type: ignore[arg-type]
                         other=paired))
    out.sort(key=lambda lb: lb.time)
    return out


def data_hash(found: Sequence[Label]) -> str:
    """Identifies the labelled data a router was learned from."""
    h = hashlib.sha256()
    for lb in found:
        h.update(json.dumps([lb.trace_id, lb.ok, lb.source]).encode())
    return h.hexdigest()


def pairs(found: Sequence[Label], side: str) -> list[tuple[str, bool]]:
    """(prompt, right) of the labels about one side, for :func:`train_heads`."""
    return [(lb.prompt, lb.ok) for lb in found if lb.side == side]


def cross_fitted(found: Sequence[Label], fit: Callable[[Sequence[Label]], Any], *,
                 folds: int = 5, seed: int = 0) -> np.ndarray[Any, Any] | None:
    """Each label's score by a router ``fit`` on the labels of the other folds, never on its
    own prompt (folds group labels by prompt text, so both sides of a paired outcome, or a
    repeated question, are held out together); None when a fold leaves no first-tier label
    to train on.

    A score is given as its quantile among the same router's scores of every prompt: the
    folds' routers order the prompts alike but each on its own scale, and pooled raw scores
    would rank one fold's prompts against another's by scale, not by need."""
    prompts = sorted({lb.prompt for lb in found})
    fold_of = dict(zip(prompts, np.random.default_rng(seed).permutation(len(prompts)) % folds,
                       strict=True))
    index = {p: i for i, p in enumerate(prompts)}
    scores = np.zeros(len(found))
    for k in range(folds):
        test = [i for i, lb in enumerate(found) if fold_of[lb.prompt] == k]
        train = [lb for lb in found if fold_of[lb.prompt] != k]
        if not test:
            continue
        if not any(lb.side == "first" for lb in train):
            return None
        every = fit(train).score_batch(prompts)  # each prompt scored once
        reference = np.sort(every)
        mine = every[[index[found[i].prompt] for i in test]]
        scores[test] = (np.searchsorted(reference, mine, side="left")
                        + np.searchsorted(reference, mine, side="right")) / (2 * len(reference))
    return scores


def apgr_of(scores: np.ndarray[Any, Any], found: Sequence[Label]) -> float:
    ok = np.array([lb.ok for lb in found])
    return evaluate(scores, ok, np.ones(len(found), dtype=bool)).apgr


def _auc(scores: np.ndarray[Any, Any], positive: np.ndarray[Any, Any]) -> float | None:
    """P(a positive scores above a negative), ties half; None without both classes."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start:start + count]] = start + (count + 1) / 2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ranking_quality(scores: np.ndarray[Any, Any], found: Sequence[Label]) -> float | None:
    """The mean over the sides of the AUC a router's scores reach on that side's labels
    for "escalating gains": on the first tier's, a failure, unless the stronger side is
    known to have failed too; on the stronger side's, a success, unless the first tier is
    known to have succeeded too. None when no side has both outcomes."""
    side = np.array([lb.side == "first" for lb in found])
    ok = np.array([lb.ok for lb in found])
    other = np.array([lb.other is None or lb.other != lb.ok for lb in found])
    gains = np.where(side, ~ok, ok) & other
    aucs = [a for a in (_auc(scores[side], gains[side]), _auc(scores[~side], gains[~side]))
            if a is not None]
    return sum(aucs) / len(aucs) if aucs else None


def paired_interval(new: np.ndarray[Any, Any], old: np.ndarray[Any, Any],
                    found: Sequence[Label], *, n: int = 400,
                    seed: int = 0) -> tuple[float, float, float]:
    """(difference, low, high): ranking quality of ``new`` minus ``old`` on ``found`` and
    its 95% percentile interval over paired label resamples."""
    a, b = ranking_quality(new, found), ranking_quality(old, found)
    if a is None or b is None:
        return 0.0, float("-inf"), float("inf")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(found), len(found))
        sample = [found[i] for i in idx]
        qa, qb = ranking_quality(new[idx], sample), ranking_quality(old[idx], sample)
        if qa is not None and qb is not None:
            vals.append(qa - qb)
    if not vals:
        return a - b, float("-inf"), float("inf")
    return a - b, float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def current_scores(scorer: Scorer, found: Sequence[Label]) -> np.ndarray[Any, Any]:
    return np.array([scorer.score(lb.request) for lb in found], dtype=np.float64)
