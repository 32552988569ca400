"""A router learned from one-sided labels: one head per side of the ladder.

Traffic labels only the tier that answered. So two heads are fitted, each on its own
tier's labels: P(the first tier is right | prompt) from the requests it answered, and
P(a stronger tier is right | prompt) from the requests a stronger tier answered (TF-IDF
unigrams and bigrams plus the prompt's log length and its standardised surface features
(``rung.routing.structure``: numbers, sentences, answer options, ...), logistic
regression: on a few hundred noisy labels it beat rung's stacked router, measured in
docs/learning.md). The score is the expected gain of escalating, on the stacked router's
scale: (1 + P(stronger right) - P(first right)) / 2. Without labels for the stronger side,
its head is the constant 1 (the score is then the first tier's estimated chance of
failing, halved and shifted).

**Implied labels.** Learned from its own traffic, a router decides which side each prompt
is labelled on, and one-sided labels let it confirm itself: a topic it sends to the
stronger tier gets only that tier's labels, and the first tier's head never learns
whether the first tier would have done. So each label also says something about the other
side, by dominance (a stronger tier is right where the first tier was right; the first
tier fails where a stronger one failed): a prompt with no label about a side gets one
implied from the other side's label, of weight ``IMPLIED_WEIGHT``, where the label
implies one (a first-tier success: the stronger tier right; a stronger tier's failure:
the first tier wrong; the other two say nothing). Measured in docs/learning.md.

A prompt unlike the training prompts (``rung.routing.domain``) is scored by the fallback
instead: the same difference, each side's outcome estimated from the prompt's log length
alone.

Scoring is numpy only (the TF-IDF vocabulary and two weight vectors in one artifact file);
training needs scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError
from rung.routing import artifact
from rung.routing.domain import Domain, features, fit_line, log_length, on_line
from rung.routing.learned import RouterModel
from rung.routing.text import Tfidf

KIND = "rung-router-heads"
# Logistic regression's inverse regularisation: 0.3 beat 1.0 and 3.0 on both sets of 5
# draws below (mean APGR, with the surface features off: seeds 0-4 0.6081 / 0.6041 / 0.5931,
# seeds 5-9 0.6241 / 0.6167).
C = 0.3
# The log-length column's scale beside the unit-norm TF-IDF row, chosen on ../shared's dev
# split in bench/one_sided_labels.py's set-up (5 draws, mean APGR): none 0.5917, 1/8 0.5960,
# 3/8 0.5975.
LENGTH_WEIGHT = 3.0 / 8.0
# The standardised surface features' scale, chosen the same way (mean APGR, C 0.3; off /
# 0.1 / 0.2 / 0.35 / 0.5): seeds 0-4 0.6081 / 0.6178 / 0.6180 / - / -, seeds 5-9 0.6241 /
# 0.6315 / 0.6330 / 0.6330 / 0.6329 (docs/learning.md).
SHAPE_WEIGHT = 0.2
# The weight of a label implied by dominance. On ../shared's RouteLLM outcomes (MMLU +
# GSM8K, 10,739 items) GPT-4 is right on 92% of the items Mixtral got right, and Mixtral
# wrong on 71% of those GPT-4 got wrong. Weights 0 / 0.25 / 0.5 / 1 (docs/learning.md):
# bench/learning_replica.py's loop, seeds 0-9, router in use 0.5961 / 0.6024 / 0.6053 /
# 0.6052; randomly routed traffic (bench/one_sided_labels.py --feedback 1.0 --seeds 5)
# 0.6177 / 0.6166 / 0.6090 / 0.5968. 0.25 gains in the loop and costs nothing there.
IMPLIED_WEIGHT = 0.25


@dataclass
class HeadsRouter:
    tfidf: Tfidf
    # w_/b_/l_/s_ (TF-IDF weights, bias, length weight, surface-feature weights) and fb_
    # (fallback line) per head: first, and next when fitted; sf_mean/sf_sd standardise the
    # surface features (files from before them have no s_ or sf_ arrays)
    arrays: dict[str, npt.NDArray[Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    domain: Domain | None = None  # None: every prompt is scored in domain

    def _p(self, head: str, prompt: str, terms: tuple[list[int], list[float]],
           shape: npt.NDArray[np.float64] | None) -> float:
        if f"w_{head}" not in self.arrays:
            return 1.0
        z = Tfidf.dot_row(terms, self.arrays[f"w_{head}"]) + float(self.arrays[f"b_{head}"])
        if f"l_{head}" in self.arrays:
            z += float(self.arrays[f"l_{head}"]) * LENGTH_WEIGHT * log_length(prompt)
        if shape is not None and f"s_{head}" in self.arrays:
            z += float(np.dot(self.arrays[f"s_{head}"], shape))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def _shape(self, row: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        """A prompt's surface features, standardised and scaled as in training."""
        if "sf_mean" not in self.arrays:
            return None
        return _scaled(row, self.arrays["sf_mean"], self.arrays["sf_sd"])

    def in_domain(self, prompt: str) -> bool:
        return self.domain is None or self.domain.contains(prompt)

    def score(self, prompt: str) -> float:
        return self.judge(prompt)[0]

    def judge(self, prompt: str) -> tuple[float, bool]:
        """The score, and whether the prompt was in domain (else the fallback gave it)."""
        row = features([prompt])[0]  # once, for the domain check and the heads
        if self.domain is not None and not self.domain.contains_row(row):
            return self.fallback(prompt), False
        shape = self._shape(row)
        terms = self.tfidf.row(prompt)  # once, for both heads
        p_next = self._p("next", prompt, terms, shape)
        p_first = self._p("first", prompt, terms, shape)
        return (1.0 + p_next - p_first) / 2.0, True

    def fallback(self, prompt: str) -> float:
        """The score from the prompt's length alone (for prompts out of domain)."""
        first = on_line(self.arrays["fb_first"], prompt)
        stronger = on_line(self.arrays["fb_next"], prompt) if "fb_next" in self.arrays else 1.0
        return min(1.0, max(0.0, (1.0 + stronger - first) / 2.0))

    def score_batch(self, prompts: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.array([self.score(p) for p in prompts], dtype=np.float64)

    def save(self, path: str | Path) -> None:
        domain = self.domain.to_arrays("dom_") if self.domain is not None else {}
        artifact.save(path, kind=KIND, meta=self.meta,
                      arrays={**self.arrays, **self.tfidf.to_arrays("tfidf_"), **domain})

    @classmethod
    def load(cls, path: str | Path) -> HeadsRouter:
        header, a = artifact.load(path, kind=KIND)
        arrays = {k: v for k, v in a.items() if not k.startswith(("tfidf_", "dom_"))}
        meta = {k: v for k, v in header.items() if k not in ("kind", "format")}
        return cls(tfidf=Tfidf.from_arrays(a, "tfidf_"), arrays=arrays, meta=meta,
                   domain=Domain.from_arrays(a, "dom_"))


def _scaled(x: npt.NDArray[np.float64], mean: npt.NDArray[np.float64],
            sd: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Surface-feature rows (or one row) standardised and scaled by SHAPE_WEIGHT."""
    return np.asarray(SHAPE_WEIGHT * (x - mean) / sd, dtype=np.float64)


@dataclass(frozen=True)
class _Head:
    w: npt.NDArray[Any]  # TF-IDF weights
    b: float
    length: float
    shape: npt.NDArray[Any]  # surface-feature weights


def _fit(tfidf: Tfidf, data: Sequence[tuple[str, bool]], x: npt.NDArray[np.float64],
         mean: npt.NDArray[np.float64], sd: npt.NDArray[np.float64],
         weight: npt.NDArray[np.float64]) -> _Head:
    """One head on its (prompt, right) pairs, their surface-feature rows ``x`` and their
    weights."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    y = np.array([ok for _, ok in data], dtype=np.int64)
    if y.min() == y.max():  # one class only: a constant head at its smoothed rate
        rate = (y.sum() + 1) / (len(y) + 2)
        return _Head(np.zeros(len(tfidf.vocab)), math.log(rate / (1 - rate)), 0.0,
                     np.zeros(len(mean)))
    prompts = [p for p, _ in data]
    length = np.array([[LENGTH_WEIGHT * log_length(p)] for p in prompts])
    extra = csr_matrix(np.hstack([length, _scaled(x, mean, sd)]))
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit(hstack([tfidf.transform_sparse(prompts), extra]).tocsr(), y, sample_weight=weight)
    coef = np.asarray(lr.coef_[0], dtype=np.float64)
    n = len(tfidf.vocab)
    return _Head(coef[:n], float(lr.intercept_[0]), float(coef[n]), coef[n + 1:])


def implied(first: Sequence[tuple[str, bool]], stronger: Sequence[tuple[str, bool]]
            ) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """The labels dominance implies for prompts without a label on that side: (first-tier
    failures from a stronger tier's failures, stronger-tier successes from the first
    tier's successes)."""
    on_first, on_stronger = {p for p, _ in first}, {p for p, _ in stronger}
    return ([(p, False) for p, ok in stronger if not ok and p not in on_first],
            [(p, True) for p, ok in first if ok and p not in on_stronger])


def train_heads(first: Sequence[tuple[str, bool]],
                stronger: Sequence[tuple[str, bool]] = (), *,
                implied_weight: float | None = None) -> HeadsRouter:
    """Fit the heads on (prompt, was the answer right) pairs of each side, each side with
    the labels the other implies (weight ``implied_weight``, default IMPLIED_WEIGHT; 0:
    none; without stronger-side labels: none)."""
    if not first:
        raise ConfigError("no labels about the first tier to learn from")
    w_implied = IMPLIED_WEIGHT if implied_weight is None else implied_weight
    own = {"first": list(first), "next": list(stronger)}
    prompts = [p for p, _ in [*first, *stronger]]
    tfidf = Tfidf.fit(prompts)
    x = features(prompts)  # once: for the heads and the domain
    row = {p: i for i, p in enumerate(prompts)}
    arrays: dict[str, npt.NDArray[Any]] = {
        "sf_mean": x.mean(axis=0),
        # a feature constant in training gets weight 0; its scale stays 1 so it stays finite
        "sf_sd": np.where(x.std(axis=0) > 1e-6, x.std(axis=0), 1.0)}
    extra = dict(zip(("first", "next"), implied(first, stronger))) if stronger and \
        w_implied > 0 else {"first": [], "next": []}
    for head, data in own.items():
        if not data:
            continue
        both = [*data, *extra[head]]
        weight = np.r_[np.ones(len(data)), np.full(len(extra[head]), w_implied)]
        fitted = _fit(tfidf, both, x[[row[p] for p, _ in both]], arrays["sf_mean"],
                      arrays["sf_sd"], weight)
        arrays[f"w_{head}"], arrays[f"b_{head}"] = fitted.w, np.asarray(fitted.b)
        arrays[f"l_{head}"], arrays[f"s_{head}"] = np.asarray(fitted.length), fitted.shape
        arrays[f"fb_{head}"] = fit_line([p for p, _ in data], [float(ok) for _, ok in data])
    return HeadsRouter(tfidf=tfidf, arrays=arrays, domain=Domain.fit_rows(x),
                       meta={"n_first": len(first), "n_next": len(stronger),
                             "implied": {"first": len(extra["first"]),
                                         "next": len(extra["next"]), "weight": w_implied},
                             "score": "(1 + P(stronger right) - P(first right)) / 2",
                             "fallback": "the same, from log length alone, out of domain"})


def load_router(path: str | Path) -> HeadsRouter | RouterModel:
    """Either kind of router file: the stacked router (`rung router train`) or heads."""
    try:
        return HeadsRouter.load(path)
    except ConfigError as exc:
        if "expected a 'rung-router-heads'" not in exc.message:
            raise
    return RouterModel.load(path)
