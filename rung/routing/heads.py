"""A router learned from one-sided labels: one head per side of the ladder.

Traffic labels only the tier that answered. So two heads are fitted, each on its own
tier's labels: P(the first tier is right | prompt) from the requests it answered, and
P(a stronger tier is right | prompt) from the requests a stronger tier answered (TF-IDF
unigrams and bigrams, logistic regression: on a few hundred noisy labels it beat rung's
stacked router, measured in bench/learning_sim.py's docstring). The score is the expected
gain of escalating, on the stacked router's scale: (1 + P(stronger right) - P(first
right)) / 2. Without labels for the stronger side, its head is the constant 1 (the score
is then the first tier's estimated chance of failing, halved and shifted).

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
from rung.routing.learned import RouterModel
from rung.routing.text import Tfidf

KIND = "rung-router-heads"
C = 1.0  # logistic regression's inverse regularisation


@dataclass
class HeadsRouter:
    tfidf: Tfidf
    arrays: dict[str, npt.NDArray[Any]]  # w_first, b_first, and w_next, b_next when fitted
    meta: dict[str, Any] = field(default_factory=dict)

    def _p(self, head: str, prompt: str) -> float:
        if f"w_{head}" not in self.arrays:
            return 1.0
        z = self.tfidf.dot(prompt, self.arrays[f"w_{head}"]) + float(self.arrays[f"b_{head}"])
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def score(self, prompt: str) -> float:
        return (1.0 + self._p("next", prompt) - self._p("first", prompt)) / 2.0

    def score_batch(self, prompts: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.array([self.score(p) for p in prompts], dtype=np.float64)

    def save(self, path: str | Path) -> None:
        artifact.save(path, kind=KIND, meta=self.meta,
                      arrays={**self.arrays, **self.tfidf.to_arrays("tfidf_")})

    @classmethod
    def load(cls, path: str | Path) -> HeadsRouter:
        header, a = artifact.load(path, kind=KIND)
        arrays = {k: v for k, v in a.items() if not k.startswith("tfidf_")}
        meta = {k: v for k, v in header.items() if k not in ("kind", "format")}
        return cls(tfidf=Tfidf.from_arrays(a, "tfidf_"), arrays=arrays, meta=meta)


def _fit(tfidf: Tfidf, data: Sequence[tuple[str, bool]]) -> tuple[npt.NDArray[Any], float]:
    from sklearn.linear_model import LogisticRegression

    y = np.array([ok for _, ok in data], dtype=np.int64)
    if y.min() == y.max():  # one class only: a constant head at its smoothed rate
        rate = (y.sum() + 1) / (len(y) + 2)
        return np.zeros(len(tfidf.vocab)), math.log(rate / (1 - rate))
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit(tfidf.transform_sparse([p for p, _ in data]), y)
    return np.asarray(lr.coef_[0], dtype=np.float64), float(lr.intercept_[0])


def train_heads(first: Sequence[tuple[str, bool]],
                stronger: Sequence[tuple[str, bool]] = ()) -> HeadsRouter:
    """Fit the heads on (prompt, was the answer right) pairs of each side."""
    if not first:
        raise ConfigError("no labels about the first tier to learn from")
    tfidf = Tfidf.fit([p for p, _ in [*first, *stronger]])
    arrays: dict[str, npt.NDArray[Any]] = {}
    arrays["w_first"], b = _fit(tfidf, first)
    arrays["b_first"] = np.asarray(b)
    if stronger:
        arrays["w_next"], b = _fit(tfidf, stronger)
        arrays["b_next"] = np.asarray(b)
    return HeadsRouter(tfidf=tfidf, arrays=arrays,
                       meta={"n_first": len(first), "n_next": len(stronger),
                             "score": "(1 + P(stronger right) - P(first right)) / 2"})


def load_router(path: str | Path) -> HeadsRouter | RouterModel:
    """Either kind of router file: the stacked router (`rung router train`) or heads."""
    try:
        return HeadsRouter.load(path)
    except ConfigError as exc:
        if "expected a 'rung-router-heads'" not in exc.message:
            raise
    return RouterModel.load(path)
