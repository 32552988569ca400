"""A TF-IDF text representation that scores with numpy alone.

Training fits it with scikit-learn (word 1-2 grams, sublinear tf, l2 norm); the fitted
vocabulary and idf weights are stored as plain arrays, and ``transform`` rebuilds the same
vector with a dict lookup, so scoring needs neither scikit-learn nor scipy.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.routing.memo import cached

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _terms(text: str) -> tuple[str, ...]:
    words = _TOKEN.findall(text.lower())
    return (*words, *(f"{a} {b}" for a, b in pairwise(words)))


def analyze(text: str) -> tuple[str, ...]:
    """Lower-cased word unigrams and bigrams (scikit-learn's default word pattern); kept
    per text inside ``rung.routing.memo.remembered``."""
    return cached("terms", text, _terms)


@dataclass(frozen=True)
class Tfidf:
    """A fitted vocabulary (term -> column) with its idf weights."""

    vocab: dict[str, int]
    idf: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, texts: Sequence[str], *, min_df: int = 2, max_features: int = 50_000) -> Tfidf:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            analyzer=analyze, min_df=min_df, max_features=max_features, sublinear_tf=True
        )
        vec.fit(list(texts))
        vocab = {str(t): int(i) for t, i in vec.vocabulary_.items()}
        return cls(vocab=vocab, idf=np.asarray(vec.idf_, dtype=np.float64))

    def transform_sparse(self, texts: Sequence[str]) -> Any:
        """A scipy CSR matrix (training path)."""
        from scipy.sparse import csr_matrix

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, text in enumerate(texts):
            idx, val = self.row(text)
            rows.extend([r] * len(idx))
            cols.extend(idx)
            vals.extend(val)
        return csr_matrix((vals, (rows, cols)), shape=(len(texts), len(self.vocab)))

    @staticmethod
    def dot_row(row: tuple[list[int], list[float]], weights: npt.NDArray[np.float64]) -> float:
        """A :meth:`row` dotted with ``weights`` (scoring path, numpy only)."""
        idx, val = row
        if not idx:
            return 0.0
        return float(np.dot(weights[idx], np.asarray(val)))

    def project(self, text: str, weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The tf-idf vector of ``text`` times ``weights`` of shape (k, n_terms) -> (k,)."""
        idx, val = self.row(text)
        if not idx:
            return np.zeros(weights.shape[0])
        out: npt.NDArray[np.float64] = weights[:, idx] @ np.asarray(val)
        return out

    def row(self, text: str) -> tuple[list[int], list[float]]:
        """The tf-idf vector of ``text``, sparse: (columns, values), l2-normed (for
        :meth:`dot_row` with several weight vectors)."""
        counts = Counter(t for t in analyze(text) if t in self.vocab)
        idx = [self.vocab[t] for t in counts]
        val = [
            (1.0 + math.log(c)) * float(self.idf[i])
            for i, c in zip(idx, counts.values(), strict=True)
        ]
        norm = math.sqrt(sum(v * v for v in val))
        return idx, [v / norm for v in val] if norm > 0 else val

    def to_arrays(self, prefix: str) -> dict[str, Any]:
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        return {f"{prefix}terms": np.asarray(terms, dtype=np.str_), f"{prefix}idf": self.idf}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]], prefix: str) -> Tfidf:
        terms = [str(t) for t in arrays[f"{prefix}terms"]]
        return cls(vocab={t: i for i, t in enumerate(terms)}, idf=arrays[f"{prefix}idf"])
