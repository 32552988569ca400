"""Is a prompt like the ones a router learned from? And what to score it with when not.

A learned router's words mean something only on prompts like its training data: trained
on MMLU and asked about GSM8K, its TF-IDF weights score word problems with the weights of
quiz subjects (measured in bench/ood_bench.py: below a plain TF-IDF baseline). So each
learned router keeps its **domain**: the mean and a regularised covariance of its
training prompts' surface features (``rung.routing.structure``: length, words, numbers,
sentences, answer options, question marks). A prompt whose Mahalanobis distance from
them is more than ``FACTOR`` times the ``QUANTILE`` of the training prompts' own distances
is out of domain. (At the quantile itself, 1% of a benchmark's own held-out prompts were
flagged, and the fallback, on another scale, cost the stacked router 0.017 APGR on
GSM8K's 5-fold evaluation: those are its most extreme, hardest prompts. Twice the
quantile flags none of them there and every prompt of the other benchmark, whose
distances start at 2.4 to 4.4 times it: bench/ood_bench.py, tests/routing/test_domain.py.)

Out of domain a router scores with its **fallback**: a straight line in the prompt's log
length, fitted on the same training outcomes. Length is the one signal measured to carry
from one benchmark to the other in ../shared (alone it reaches APGR 0.59 on both GSM8K and
MMLU, whichever it was fitted on; docs/learning.md). Both the score and the fallback are
on the router's scale, so in-domain and fallback scores can share a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.routing.memo import cached
from rung.routing.structure import structure_features

QUANTILE = 0.99
FACTOR = 2.0
MIN_PROMPTS = 50  # fewer training prompts: no domain check (every prompt in domain)
VAR_FLOOR = 0.05  # a feature constant in training still tolerates small moves
VAR_SHARE = 0.1  # ... and every variance is widened by this share of itself

FArr = npt.NDArray[np.float64]


def log_length(prompt: str) -> float:
    return math.log1p(len(prompt))


def features(prompts: Sequence[str]) -> FArr:
    """The prompts' surface features (``rung.routing.structure``), one row each."""
    rows = [cached("structure", p, structure_features) for p in prompts]
    return np.array(rows, dtype=np.float64).reshape(len(prompts), -1)


@dataclass(frozen=True)
class Domain:
    """The training prompts' surface-feature distribution and the distance beyond which a
    prompt is out of it."""

    mean: FArr
    inv_cov: FArr
    threshold: float

    @classmethod
    def fit(cls, prompts: Sequence[str], *, quantile: float = QUANTILE) -> Domain | None:
        """None when there are too few prompts to say what the domain is."""
        return cls.fit_rows(features(prompts), quantile=quantile)

    @classmethod
    def fit_rows(cls, x: FArr, *, quantile: float = QUANTILE) -> Domain | None:
        """:meth:`fit` on the prompts' :func:`features` rows, already computed."""
        if len(x) < MIN_PROMPTS:
            return None
        mean = x.mean(axis=0)
        cov = np.atleast_2d(np.cov(x, rowvar=False))
        cov += np.diag(np.maximum(np.diag(cov) * VAR_SHARE, VAR_FLOOR))
        inv: FArr = np.asarray(np.linalg.inv(cov), dtype=np.float64)
        d = _distances(x, mean, inv)
        return cls(mean=mean, inv_cov=inv,
                   threshold=FACTOR * float(np.quantile(d, quantile)))

    def distance(self, prompt: str) -> float:
        return self.distance_of(features([prompt])[0])

    def distance_of(self, row: FArr) -> float:
        """The distance of a prompt's :func:`features` row."""
        return float(_distances(row[None, :], self.mean, self.inv_cov)[0])

    def contains(self, prompt: str) -> bool:
        return self.distance(prompt) <= self.threshold

    def contains_row(self, row: FArr) -> bool:
        return self.distance_of(row) <= self.threshold

    def to_arrays(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}mean": self.mean, f"{prefix}inv_cov": self.inv_cov,
                f"{prefix}threshold": np.asarray(self.threshold)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], prefix: str) -> Domain | None:
        """None for a router saved before domains existed (it scores every prompt)."""
        if f"{prefix}mean" not in arrays:
            return None
        return cls(mean=np.asarray(arrays[f"{prefix}mean"], dtype=np.float64),
                   inv_cov=np.asarray(arrays[f"{prefix}inv_cov"], dtype=np.float64),
                   threshold=float(arrays[f"{prefix}threshold"]))


def _distances(x: FArr, mean: FArr, inv: FArr) -> FArr:
    z = x - mean
    d2 = np.einsum("ij,jk,ik->i", z, inv, z)
    out: FArr = np.sqrt(np.maximum(d2, 0.0))
    return out


def fit_line(prompts: Sequence[str], targets: Sequence[float]) -> FArr:
    """Least-squares (slope, intercept) of ``targets`` on the prompts' log length."""
    x = np.array([[log_length(p), 1.0] for p in prompts], dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if len(y) < 2 or float(np.ptp(x[:, 0])) == 0.0:
        return np.array([0.0, float(y.mean()) if len(y) else 0.0])
    coef: FArr = np.asarray(np.linalg.lstsq(x, y, rcond=None)[0], dtype=np.float64)
    return coef


def on_line(coef: FArr, prompt: str) -> float:
    return float(coef[0]) * log_length(prompt) + float(coef[1])
