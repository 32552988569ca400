"""How far a model's next-token distributions are from a reference model's, on one text:
the mean KL divergence KL(reference || candidate) and the share of positions where both
rank the same token first. This is ``llama-perplexity --kl-divergence``'s measure,
computed in-process from full logits (``logits_all``), so no reference file is written.

The text is cut into windows of ``window`` tokens, each evaluated from an empty context;
every position of every window counts. Both models must tokenize the text identically
(same vocabulary): otherwise the distributions are over different things and the
comparison is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError


@dataclass(frozen=True)
class Divergence:
    kld: float  # mean KL(reference || candidate), nats per position
    kld_p99: float  # its 99th percentile over positions
    top1_agree: float  # share of positions with the same most likely token
    positions: int


def log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    return out


def _load(path: Path, *, window: int, threads: int) -> Any:
    from llama_cpp import Llama  # heavy: imported where used

    return Llama(model_path=str(path), n_ctx=window, n_batch=window, n_threads=threads,
                 n_threads_batch=threads, logits_all=True, verbose=False)


def tokens_of(path: Path, text: str, *, max_tokens: int, threads: int = 2) -> list[int]:
    """The text as ``path``'s tokenizer cuts it (its first ``max_tokens`` tokens)."""
    llm = _load(path, window=128, threads=threads)
    try:
        return list(llm.tokenize(text.encode(), add_bos=False, special=False))[:max_tokens]
    finally:
        llm.close()


def logprobs(path: Path, tokens: Sequence[int], *, window: int = 512,
             threads: int = 2) -> npt.NDArray[np.float32]:
    """Next-token log-probabilities at every position, shape (len(tokens), vocab)."""
    llm = _load(path, window=window, threads=threads)
    try:
        rows = []
        for start in range(0, len(tokens), window):
            chunk = list(tokens[start:start + window])
            llm.reset()
            llm.eval(chunk)
            rows.append(log_softmax(np.asarray(llm.scores[:len(chunk)])).astype(np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, llm.n_vocab()), np.float32)
    finally:
        llm.close()


def divergence(ref: npt.NDArray[np.float32], cand: npt.NDArray[np.float32]) -> Divergence:
    """KL(ref || cand) per position from two log-probability arrays of one shape."""
    if ref.shape != cand.shape:
        raise ConfigError(f"the models' vocabularies differ ({ref.shape[-1]} vs "
                          f"{cand.shape[-1]} tokens): KL divergence needs one tokenizer")
    pers, agrees = [np.zeros(0)], [np.zeros(0, bool)]
    for i in range(0, len(ref), 64):  # in blocks: a row is a whole vocabulary
        r, c = ref[i:i + 64].astype(np.float64), cand[i:i + 64].astype(np.float64)
        pers.append((np.exp(r) * (r - c)).sum(axis=-1))
        agrees.append(r.argmax(axis=-1) == c.argmax(axis=-1))
    # Rounding can make an identical row a hair negative.
    per = np.maximum(np.concatenate(pers), 0.0)
    agree = np.concatenate(agrees).mean() if len(per) else 0.0
    return Divergence(kld=float(per.mean()) if len(per) else 0.0,
                      kld_p99=float(np.percentile(per, 99)) if len(per) else 0.0,
                      top1_agree=float(agree), positions=len(per))


def compare(reference: Path, candidates: Sequence[Path], text: str, *, max_tokens: int = 1024,
            window: int = 512, threads: int = 2) -> dict[Path, Divergence | str]:
    """Each candidate's divergence from ``reference`` on ``text``; a candidate whose
    tokenizer cuts the text differently gets the reason instead."""
    tokens = tokens_of(reference, text, max_tokens=max_tokens, threads=threads)
    ref = logprobs(reference, tokens, window=window, threads=threads)
    out: dict[Path, Divergence | str] = {}
    for path in candidates:
        if tokens_of(path, text, max_tokens=max_tokens, threads=threads) != tokens:
            out[path] = "tokenizer differs from the reference's"
            continue
        cand = ref if path == reference else logprobs(path, tokens, window=window,
                                                       threads=threads)
        if cand.shape != ref.shape:
            out[path] = "vocabulary differs from the reference's"
            continue
        out[path] = divergence(ref, cand)
    return out
