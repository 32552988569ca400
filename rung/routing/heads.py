"""A router learned from one-sided labels: one head per side of the ladder.

Traffic labels only the tier that answered. So two heads are fitted, each on its own
tier's labels: P(the first tier is right | prompt) from the requests it answered, and
P(a stronger tier is right | prompt) from the requests a stronger tier answered (TF-IDF
unigrams and bigrams plus the prompt's log length, logistic regression: on a few hundred
noisy labels it beat rung's stacked router, measured in docs/learning.md). The score is
the expected gain of escalating, on the stacked router's scale: (1 + P(stronger right) -
P(first right)) / 2. Without labels for the stronger side, its head is the constant 1 (the score
is then the first tier's estimated chance of failing, halved and shifted).

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
from rung.routing.domain import Domain, fit_line, log_length, on_line
from rung.routing.learned import RouterModel
from rung.routing.text import Tfidf

KIND = "rung-router-heads"
C = 1.0  # logistic regression's inverse regularisation
# The log-length column's scale beside the unit-norm TF-IDF row, chosen on ../shared's dev
# split in bench/one_sided_labels.py's set-up (5 draws, mean APGR): none 0.5917, 1/8 0.5960,
# 3/8 0.5975.
LENGTH_WEIGHT = 3.0 / 8.0


@dataclass
class HeadsRouter:
    tfidf: Tfidf
    # w_/b_/l_ (TF-IDF weights, bias, length weight) and fb_ (fallback line) per head:
    # first, and next when fitted
    arrays: dict[str, npt.NDArray[Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    domain: Domain | None = None  # None: every prompt is scored in domain

    def _p(self, head: str, prompt: str) -> float:
        if f"w_{head}" not in self.arrays:
            return 1.0
        z = self.tfidf.dot(prompt, self.arrays[f"w_{head}"]) + float(self.arrays[f"b_{head}"])
        if f"l_{head}" in self.arrays:
            z += float(self.arrays[f"l_{head}"]) * LENGTH_WEIGHT * log_length(prompt)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def in_domain(self, prompt: str) -> bool:
        return self.domain is None or self.domain.contains(prompt)

    def score(self, prompt: str) -> float:
        if not self.in_domain(prompt):
            return self.fallback(prompt)
        return (1.0 + self._p("next", prompt) - self._p("first", prompt)) / 2.0

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


def _fit(tfidf: Tfidf,
         data: Sequence[tuple[str, bool]]) -> tuple[npt.NDArray[Any], float, float]:
    """(TF-IDF weights, bias, length weight) of one head."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    y = np.array([ok for _, ok in data], dtype=np.int64)
    if y.min() == y.max():  # one class only: a constant head at its smoothed rate
        rate = (y.sum() + 1) / (len(y) + 2)
        return np.zeros(len(tfidf.vocab)), math.log(rate / (1 - rate)), 0.0
    prompts = [p for p, _ in data]
    length = csr_matrix(np.array([[LENGTH_WEIGHT * log_length(p)] for p in prompts]))
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit(hstack([tfidf.transform_sparse(prompts), length]).tocsr(), y)
    coef = np.asarray(lr.coef_[0], dtype=np.float64)
    return coef[:-1], float(lr.intercept_[0]), float(coef[-1])


def train_heads(first: Sequence[tuple[str, bool]],
                stronger: Sequence[tuple[str, bool]] = ()) -> HeadsRouter:
    """Fit the heads on (prompt, was the answer right) pairs of each side."""
    if not first:
        raise ConfigError("no labels about the first tier to learn from")
    prompts = [p for p, _ in [*first, *stronger]]
    tfidf = Tfidf.fit(prompts)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for head, data in (("first", first), ("next", stronger)):
        if not data:
            continue
        w, b, length = _fit(tfidf, data)
        arrays[f"w_{head}"], arrays[f"b_{head}"], arrays[f"l_{head}"] = (
            w, np.asarray(b), np.asarray(length))
        arrays[f"fb_{head}"] = fit_line([p for p, _ in data], [float(ok) for _, ok in data])
    return HeadsRouter(tfidf=tfidf, arrays=arrays, domain=Domain.fit(prompts),
                       meta={"n_first": len(first), "n_next": len(stronger),
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
