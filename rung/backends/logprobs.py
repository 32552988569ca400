"""Token logprobs from a local model's raw logits, as the API reports them.

Both local decoding paths (one request at a time, and continuous batching) compute them
here, so a request gets the same numbers whichever path served it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rung.types import TokenLogprob, TopLogprob


def log_softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    m = float(logits.max())
    return logits - (m + float(np.log(np.exp(logits - m).sum())))


def token_logprob(llm: Any, logp: np.ndarray[Any, Any], tok: int, piece: bytes,
                  top_n: int) -> TokenLogprob:
    """The chosen token's logprob and the ``top_n`` most likely alternatives."""
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        idx = np.argpartition(-logp, top_n)[:top_n]
        idx = idx[np.argsort(-logp[idx])]
        top = tuple(
            TopLogprob(token=llm.detokenize([int(i)]).decode("utf-8", errors="replace"),
                       logprob=float(logp[i]))
            for i in idx
        )
    return TokenLogprob(token=piece.decode("utf-8", errors="replace"),
                        logprob=float(logp[tok]), top=top)
