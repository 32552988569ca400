"""What the drift tests look at, read off traces.

Input features are the router's view of a request: its last user message as TF-IDF
(reduced to a few dense components) plus the surface features of
``rung.routing.structure``, optionally MiniLM embeddings. Every feature map is fitted on
the pooled reference + recent prompts, never on one window alone: a map fitted on the
reference only (its vocabulary, its principal directions) fits reference rows better than
recent ones, so the windows can look different when nothing changed; a label-blind map
keeps the permutation p-values exact. Traces whose messages were redacted fall
back to numeric features (token counts, router score).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rung.routing.structure import structure_features
from rung.store.trace import Trace

FArr = npt.NDArray[np.float64]

TEXT_COMPONENTS = 20
EMBED_COMPONENTS = 20


def last_user_message(trace: Trace) -> str | None:
    """The question being asked (what routers score), or None when redacted."""
    if not trace.messages:
        return None
    for m in reversed(trace.messages):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return str(trace.messages[-1].get("content") or "")


def _components(x: FArr, k: int) -> FArr:
    """The top ``k`` principal directions of ``x`` (rows: samples), as scores."""
    x = x - x.mean(axis=0)
    k = max(1, min(k, min(x.shape) - 1))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out: FArr = x @ vt[:k].T
    return out


def text_features(
    prompts: Sequence[str], *, components: int = TEXT_COMPONENTS, embed: bool = False, seed: int = 0
) -> tuple[FArr, list[str]]:
    """Dense features of ``prompts`` (the pooled sample: reference rows then recent rows).

    TF-IDF (word 1-2 grams, the router's analyzer) is fitted on these prompts and reduced
    to ``components`` truncated-SVD components; the 11 structure features are appended, and
    with ``embed`` the top components of the MiniLM embeddings.
    """
    from sklearn.decomposition import TruncatedSVD

    from rung.routing.structure import STRUCTURE_NAMES
    from rung.routing.text import Tfidf

    names: list[str] = []
    blocks: list[FArr] = []
    tfidf = Tfidf.fit(prompts, min_df=2)
    if len(tfidf.vocab) > components:
        sparse = tfidf.transform_sparse(prompts)
        svd = TruncatedSVD(n_components=components, random_state=seed)
        blocks.append(np.asarray(svd.fit_transform(sparse), dtype=np.float64))
        names += [f"tfidf_svd{i}" for i in range(components)]
    blocks.append(np.array([structure_features(p) for p in prompts], dtype=np.float64))
    names += list(STRUCTURE_NAMES)
    if embed:
        from rung.routing.embed import MiniLM

        e = np.asarray(MiniLM().embed(list(prompts)), dtype=np.float64)
        blocks.append(_components(e, EMBED_COMPONENTS))
        names += [f"minilm_pc{i}" for i in range(blocks[-1].shape[1])]
    return np.hstack(blocks), names


def numeric_features(traces: Sequence[Trace]) -> tuple[FArr, list[str]]:
    """What a redacted trace still says about its input: token counts and router score."""
    rows = [
        [
            math.log1p(t.input_tokens),
            math.log1p(t.output_tokens),
            t.score if t.score is not None else math.nan,
        ]
        for t in traces
    ]
    x = np.array(rows, dtype=np.float64).reshape(len(rows), 3)
    names = ["log_input_tokens", "log_output_tokens", "score"]
    if np.isnan(x[:, 2]).all():
        return x[:, :2], names[:2]
    col = x[:, 2]
    col[np.isnan(col)] = float(np.nanmean(col))
    return x, names


def verifier_scores(trace: Trace) -> dict[str, tuple[float, bool]]:
    """``"tier/verifier" -> (score, accept)`` for every verdict in the trace's route (the
    first one per key: a retried tier is judged once)."""
    out: dict[str, tuple[float, bool]] = {}
    route = trace.routing
    for attempt in route.attempts:
        for v in attempt.verdicts:
            out.setdefault(f"{attempt.tier}/{v.name}", (v.score, v.accept))
    if route.judged is not None:  # a sampled judge's verdict (rung.drift.judging)
        out[f"judged/{route.judged.tier}"] = (route.judged.verdict.score,
                                              route.judged.verdict.accept)
    return out
