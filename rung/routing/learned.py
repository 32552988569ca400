"""The learned router: prompt -> float in [0, 1], "how much this needs the strong tier".

Trained on outcome tables (which questions a weak and a strong model got right). What a
router can win on an item is its *gain*: +1 when only the strong model is right, -1 when
only the weak one is, 0 otherwise; PGR at any strong-call share is the summed gain of the
items sent up (see ``rung.routing.metrics``). So each scorer estimates the expected gain
E[gain | prompt] = P(+1) - P(-1), and the router's score is (1 + E[gain]) / 2. Predicting
"weak is wrong" instead wastes strong calls on items neither model gets right.

It is a small stack. Base scorers, each an expected gain per prompt:

- ``tfidf``: 3-class logistic regression on word 1-2 gram TF-IDF;
- ``structure``: the same on surface features (``rung.routing.structure``);
- ``tsubject``: when the training data has subjects (MMLU: known from the file name at
  training, but a request only brings its prompt), multinomial naive Bayes over the TF-IDF
  vector gives P(subject | prompt), times each subject's mean gain;
- with embeddings (all-MiniLM-L6-v2, optional):
  ``emb`` (3-class logistic regression), ``knn`` (similarity-weighted mean gain of the
  nearest training prompts), and ``subject`` (soft nearest-centroid subject of the prompt
  in embedding space, times each subject's mean gain).

A least-squares combiner fitted on the base scorers' out-of-fold outputs gives the final
expected gain. A prompt unlike the training prompts (``rung.routing.domain``) gets the
fallback's instead: a straight line in its log length fitted on the same gains.

Training needs scikit-learn and scipy; scoring needs only numpy (plus ``tokenizers`` and
the MiniLM weights when embeddings are used).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError
from rung.routing import artifact
from rung.routing.data import Outcome
from rung.routing.domain import Domain, fit_line, on_line
from rung.routing.scorers import MAX_PROMPT_CHARS
from rung.routing.structure import structure_features
from rung.routing.text import Tfidf

KIND = "rung-router"
FArr = npt.NDArray[np.float64]
E32 = npt.NDArray[np.float32]
KNN_K = 100
KNN_TEMP = 0.05
SUBJECT_TEMP = 0.02
SUBJECT_NB_ALPHA = 0.01
INNER_FOLDS = 5
CLASSES = (-1, 0, 1)


def _softmax(logits: FArr) -> FArr:
    z = logits - logits.max(axis=-1, keepdims=True)
    p: FArr = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def _softmax_gain(logits: FArr) -> FArr:
    """P(+1) - P(-1) from 3-class logits ordered as CLASSES."""
    p = _softmax(logits)
    out: FArr = p[..., 2] - p[..., 0]
    return out


def _fit_subject_nb(x: Any, labels: npt.NDArray[np.str_], names: list[str]) -> tuple[E32, FArr]:
    """Multinomial naive Bayes over subjects on the TF-IDF vectors: (log P(term | subject)
    (n_subjects, n_terms), log P(subject)). Scoring is a softmax of x @ logp.T + prior."""
    from sklearn.naive_bayes import MultinomialNB

    m = MultinomialNB(alpha=SUBJECT_NB_ALPHA).fit(x, labels)
    order = [m.classes_.tolist().index(n) for n in names]
    return (m.feature_log_prob_[order].astype(np.float32),
            m.class_log_prior_[order].astype(np.float64))


def _fit_3class(x: Any, gain: npt.NDArray[np.int64], *, c: float) -> tuple[FArr, FArr]:
    """Multinomial logistic regression over gains (-1, 0, +1); returns (W (3, d), b (3,))."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=c, max_iter=3000).fit(x, gain)
    w = np.zeros((3, x.shape[1]))
    b = np.full(3, -30.0)  # a class absent from training gets probability ~0
    for row, cls in enumerate(m.classes_.tolist()):
        k = CLASSES.index(int(cls))
        if len(m.classes_) == 2:  # binary sklearn stores one row for the positive class
            w[k] = m.coef_[0] if row == 1 else 0.0
            b[k] = m.intercept_[0] if row == 1 else 0.0
        else:
            w[k], b[k] = m.coef_[row], m.intercept_[row]
    return w, b


@dataclass
class RouterModel:
    """A fitted router; ``score``/``score_batch`` return floats in [0, 1].

    Safe to call from several threads at once; the embedder loads once, on first use.
    """

    components: tuple[str, ...]
    arrays: dict[str, npt.NDArray[Any]]
    tfidf: Tfidf
    meta: dict[str, Any] = field(default_factory=dict)
    domain: Domain | None = None  # None: every prompt is scored in domain
    _embedder: Any = None
    _embedder_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                           compare=False)

    @property
    def uses_embeddings(self) -> bool:
        return "emb_w" in self.arrays

    def embedder(self) -> Any:
        """The MiniLM embedder, loaded on first use (about 2 s; one load however many
        threads ask at once)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    from rung.routing.embed import MiniLM

                    self._embedder = MiniLM()
        return self._embedder

    def embed(self, prompts: Sequence[str]) -> E32:
        vecs: E32 = self.embedder().embed(prompts)
        return vecs

    def base_scores(self, prompts: Sequence[str], embeddings: E32 | None = None) -> FArr:
        """(n, len(components)) expected gains from each base scorer."""
        prompts = [p[:MAX_PROMPT_CHARS] for p in prompts]
        a = self.arrays
        tf_logits = np.stack([self.tfidf.project(p, a["tfidf_w"]) for p in prompts]) + a["tfidf_b"]
        st = (np.array([structure_features(p) for p in prompts]) - a["st_mean"]) / a["st_scale"]
        cols = [_softmax_gain(tf_logits), _softmax_gain(st @ a["st_w"].T + a["st_b"])]
        if "tsubj_logp" in a:
            logp = a["tsubj_logp"]
            logits = np.stack([self.tfidf.project(p, logp) for p in prompts]) + a["tsubj_prior"]
            cols.append(_softmax(logits) @ a["tsubj_rate"])
        if self.uses_embeddings:
            e = self.embed(prompts) if embeddings is None else embeddings
            e64 = e.astype(np.float64)
            cols.append(_softmax_gain(e64 @ a["emb_w"].T + a["emb_b"]))
            cols.append(knn_mean(e, a["knn_x"].astype(np.float32), a["knn_y"]))
            if "subj_centroids" in a:
                logits = (e64 @ a["subj_centroids"].T) / SUBJECT_TEMP
                cols.append(_softmax(logits) @ a["subj_rate"])
        return np.stack(cols, axis=1)

    def expected_gain(self, prompts: Sequence[str], embeddings: E32 | None = None) -> FArr:
        out: FArr = self.base_scores(prompts, embeddings) @ self.arrays["stack_w"]
        return out + float(self.arrays["stack_b"])

    def score_batch(self, prompts: Sequence[str], embeddings: E32 | None = None) -> FArr:
        """Scores in [0, 1]: (1 + expected gain) / 2, clipped."""
        if not prompts:
            return np.zeros(0)
        return self._scores(prompts, embeddings)[0]

    def _scores(self, prompts: Sequence[str], embeddings: E32 | None = None
                ) -> tuple[FArr, list[bool]]:
        """The scores and, per prompt, whether it was in domain (else the fallback's)."""
        gain = self.expected_gain(prompts, embeddings)
        inside = [True] * len(prompts)
        if "fb_gain" in self.arrays:
            for i, p in enumerate(prompts):
                if not self.in_domain(p):
                    inside[i] = False
                    gain[i] = on_line(self.arrays["fb_gain"], p[:MAX_PROMPT_CHARS])
        out: FArr = np.clip((1.0 + gain) / 2.0, 0.0, 1.0)
        return out, inside

    def in_domain(self, prompt: str) -> bool:
        return self.domain is None or self.domain.contains(prompt[:MAX_PROMPT_CHARS])

    def score(self, prompt: str) -> float:
        return float(self.score_batch([prompt])[0])

    def judge(self, prompt: str) -> tuple[float, bool]:
        """The score, and whether the prompt was in domain (else the fallback gave it)."""
        scores, inside = self._scores([prompt])
        return float(scores[0]), inside[0]

    def save(self, path: str | Path) -> None:
        arrays = dict(self.arrays)
        if "knn_x" in arrays:
            arrays["knn_x"] = arrays["knn_x"].astype(np.float16)
        arrays.update(self.tfidf.to_arrays("tfidf_"))
        if self.domain is not None:
            arrays.update(self.domain.to_arrays("dom_"))
        meta = {**self.meta, "components": list(self.components)}
        artifact.save(path, kind=KIND, meta=meta, arrays=arrays)

    @classmethod
    def load(cls, path: str | Path) -> RouterModel:
        header, a = artifact.load(path, kind=KIND)
        tfidf = Tfidf.from_arrays(a, "tfidf_")
        arrays = {k: v for k, v in a.items()
                  if k not in ("tfidf_terms", "tfidf_idf") and not k.startswith("dom_")}
        meta = {k: v for k, v in header.items() if k != "components"}
        return cls(components=tuple(header["components"]), arrays=arrays, tfidf=tfidf, meta=meta,
                   domain=Domain.from_arrays(a, "dom_"))


def knn_mean(e: E32, train_x: E32, train_y: FArr) -> FArr:
    """Softmax-similarity-weighted mean label of the ``KNN_K`` most similar training rows."""
    sims = e @ train_x.T
    k = min(KNN_K, train_x.shape[0])
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sims, idx, axis=1).astype(np.float64)
    wts = np.exp((top - top.max(axis=1, keepdims=True)) / KNN_TEMP)
    out: FArr = (train_y[idx] * wts).sum(axis=1) / wts.sum(axis=1)
    return out


def _fit_base(
    prompts: Sequence[str],
    gain: npt.NDArray[np.int64],
    subjects: Sequence[str | None],
    emb: E32 | None,
) -> RouterModel:
    tfidf = Tfidf.fit(prompts)
    a: dict[str, npt.NDArray[Any]] = {}
    x_tfidf = tfidf.transform_sparse(prompts)
    a["tfidf_w"], a["tfidf_b"] = _fit_3class(x_tfidf, gain, c=1.0)
    st = np.array([structure_features(p) for p in prompts])
    a["st_mean"], a["st_scale"] = st.mean(axis=0), st.std(axis=0)
    a["st_scale"][a["st_scale"] == 0] = 1.0
    a["st_w"], a["st_b"] = _fit_3class((st - a["st_mean"]) / a["st_scale"], gain, c=1.0)
    comps = ["tfidf", "structure"]
    labels = np.array([s or "" for s in subjects])
    names = sorted(set(labels.tolist()))
    subject_rate = np.array([gain[labels == n].mean() for n in names])
    if len(names) > 1:
        a["tsubj_logp"], a["tsubj_prior"] = _fit_subject_nb(x_tfidf, labels, names)
        a["tsubj_rate"] = subject_rate
        comps.append("tsubject")
    if emb is not None:
        a["emb_w"], a["emb_b"] = _fit_3class(emb, gain, c=1.0)
        a["knn_x"], a["knn_y"] = emb, gain.astype(np.float64)
        comps += ["emb", "knn"]
        if len(names) > 1:
            cents = np.stack([emb[labels == n].mean(axis=0) for n in names]).astype(np.float64)
            a["subj_centroids"] = cents / np.linalg.norm(cents, axis=1, keepdims=True)
            a["subj_rate"] = subject_rate
            comps.append("subject")
    return RouterModel(components=tuple(comps), arrays=a, tfidf=tfidf)


def train_router(
    outcomes: Sequence[Outcome],
    *,
    embeddings: E32 | None = None,
    use_embeddings: bool = True,
    inner_folds: int = INNER_FOLDS,
    seed: int = 0,
) -> RouterModel:
    """Fit the stack on ``outcomes``; ``embeddings`` (n, 384) may be passed precomputed."""
    from sklearn.model_selection import KFold

    prompts = [o.prompt[:MAX_PROMPT_CHARS] for o in outcomes]  # as scoring reads them
    gain = np.array([o.gain for o in outcomes], dtype=np.int64)
    if inner_folds < 2 or len(outcomes) < 2 * inner_folds or not (gain == 1).any():
        raise ConfigError("training data needs items that only the strong model gets right")
    subjects = [o.subject for o in outcomes]
    emb = embeddings
    if emb is None and use_embeddings:
        from rung.routing.embed import MiniLM

        emb = MiniLM().embed(prompts)
    final = _fit_base(prompts, gain, subjects, emb)
    # The combiner is fitted on out-of-fold base scores, so it weighs honest outputs.
    oof = np.zeros((len(prompts), len(final.components)))
    for tr, te in KFold(inner_folds, shuffle=True, random_state=seed).split(oof):
        sub = _fit_base(
            [prompts[i] for i in tr],
            gain[tr],
            [subjects[i] for i in tr],
            None if emb is None else emb[tr],
        )
        oof[te] = sub.base_scores([prompts[i] for i in te], None if emb is None else emb[te])
    x = np.hstack([oof, np.ones((len(oof), 1))])
    coef = np.linalg.lstsq(x, gain.astype(np.float64), rcond=None)[0]
    final.arrays["stack_w"], final.arrays["stack_b"] = coef[:-1], np.asarray(coef[-1])
    final.arrays["fb_gain"] = fit_line(prompts, gain.tolist())
    final.domain = Domain.fit(prompts)
    final.meta = {
        "benchmarks": sorted({o.benchmark for o in outcomes}),
        "n_train": len(outcomes),
        "score": "(1 + E[strong correct - weak correct]) / 2",
        "embedder": "all-MiniLM-L6-v2" if emb is not None else None,
        "stack_weights": dict(zip(final.components, coef[:-1].round(4).tolist(), strict=True)),
        "fallback": "a line in log length, out of domain (rung.routing.domain)",
    }
    return final
