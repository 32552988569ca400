"""The learned verifier: (question, weak answer) -> float in [0, 1]; higher = escalate.

It reads only what a gateway has at inference time: the answer's own arithmetic re-checked,
its final answer's shape, how the numbers it uses relate to the question's
(``rung.verify.features``), the question's surface difficulty (``rung.routing.structure``)
and TF-IDF of the answer. A 4-class logistic regression over the joint outcome (weak
right?, strong right?) gives both P(the weak answer is wrong) and the expected gain of
escalating, P(only strong right) - P(only weak right). The score is (1 + expected gain) / 2:
it rises with P(wrong) but does not spend escalations on questions the strong model is
likely to miss too, which is what recovers the most quality per strong call (cross-validated
cascade APGR 0.86 vs 0.83 for P(wrong) on GSM8K; see bench/routing_cv.py).

Training needs scikit-learn and scipy; scoring needs only numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError
from rung.routing import artifact
from rung.routing.data import Outcome
from rung.routing.structure import STRUCTURE_NAMES, structure_features
from rung.routing.text import Tfidf
from rung.verify.features import FEATURE_NAMES, response_features

KIND = "rung-verifier"
FArr = npt.NDArray[np.float64]
# Joint outcome classes, index = 2 * weak_correct + strong_correct.
WW, WR, RW, RR = 0, 1, 2, 3
NAMES = (*FEATURE_NAMES, *(f"prompt_{n}" for n in STRUCTURE_NAMES))


def _features(prompt: str, response: str) -> list[float]:
    return response_features(prompt, response) + structure_features(prompt)


@dataclass
class VerifierModel:
    """A fitted verifier; ``score`` is the escalation score, ``p_wrong`` P(answer wrong)."""

    mean: FArr
    scale: FArr
    feat_w: FArr  # (4, n_features)
    tfidf: Tfidf
    tfidf_w: FArr  # (4, n_terms)
    bias: FArr  # (4,)
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, prompt: str, response: str) -> FArr:
        """P(WW), P(WR), P(RW), P(RR) for this question and weak answer."""
        f = (np.asarray(_features(prompt, response)) - self.mean) / self.scale
        z = self.feat_w @ f + self.tfidf.project(response, self.tfidf_w) + self.bias
        p = np.exp(z - z.max())
        out: FArr = p / p.sum()
        return out

    def p_wrong(self, prompt: str, response: str) -> float:
        p = self.probabilities(prompt, response)
        return float(p[WW] + p[WR])

    def score(self, prompt: str, response: str) -> float:
        """(1 + P(only strong right) - P(only weak right)) / 2, in [0, 1]."""
        p = self.probabilities(prompt, response)
        return float((1.0 + p[WR] - p[RW]) / 2.0)

    def score_batch(self, prompts: Sequence[str], responses: Sequence[str]) -> FArr:
        return np.array([self.score(p, r) for p, r in zip(prompts, responses, strict=True)])

    def save(self, path: str | Path) -> None:
        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "feat_w": self.feat_w,
            "tfidf_w": self.tfidf_w,
            "bias": self.bias,
            **self.tfidf.to_arrays("tfidf_"),
        }
        meta = {**self.meta, "features": list(NAMES)}
        artifact.save(path, kind=KIND, meta=meta, arrays=arrays)

    @classmethod
    def load(cls, path: str | Path) -> VerifierModel:
        header, a = artifact.load(path, kind=KIND)
        if header.get("features") != list(NAMES):
            raise ConfigError(f"{path} was trained with other features; retrain it")
        return cls(
            mean=a["mean"],
            scale=a["scale"],
            feat_w=a["feat_w"],
            tfidf=Tfidf.from_arrays(a, "tfidf_"),
            tfidf_w=a["tfidf_w"],
            bias=a["bias"],
            meta={k: v for k, v in header.items() if k != "features"},
        )


def train_verifier(outcomes: Sequence[Outcome], *, c: float = 1.0) -> VerifierModel:
    """Fit on outcomes that carry the weak model's answer."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    rows = [o for o in outcomes if o.weak_response is not None]
    if not rows:
        raise ConfigError("no training row carries a weak-model response (use gsm8k)")
    y = np.array([2 * int(o.weak_correct) + int(o.strong_correct) for o in rows])
    if not ((y == WR).any() and (y == RR).any()):
        raise ConfigError("training data needs both right and wrong weak answers")
    responses = [o.weak_response or "" for o in rows]
    f = np.array([_features(o.prompt, r) for o, r in zip(rows, responses, strict=True)])
    mean, scale = f.mean(axis=0), f.std(axis=0)
    scale[scale == 0] = 1.0
    tfidf = Tfidf.fit(responses)
    x = hstack([csr_matrix((f - mean) / scale), tfidf.transform_sparse(responses)]).tocsr()
    m = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    k = len(NAMES)
    coef = np.zeros((4, x.shape[1]))
    bias = np.full(4, -30.0)  # a joint outcome absent from training gets probability ~0
    classes = [int(c) for c in m.classes_]
    if len(classes) == 2:  # binary: sklearn keeps one row, for the second class
        coef[classes[1]], bias[classes[1]] = m.coef_[0], m.intercept_[0]
        coef[classes[0]], bias[classes[0]] = 0.0, 0.0
    else:
        for row, cls in enumerate(classes):
            coef[cls], bias[cls] = m.coef_[row], m.intercept_[row]
    return VerifierModel(
        mean=mean,
        scale=scale,
        feat_w=coef[:, :k],
        tfidf=tfidf,
        tfidf_w=coef[:, k:],
        bias=bias,
        meta={"n_train": len(rows), "score": "(1 + P(only strong right) - P(only weak right)) / 2"},
    )
