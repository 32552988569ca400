"""Sampling that fits the model: a request that leaves ``temperature`` and ``top_p``
unset is sampled as its model's authors recommend, not at OpenAI's 1.0.

The recommendation comes from, first to last: the tier's config (``sampling`` on a llama
backend), the GGUF file's ``general.sampling.*`` metadata (llama.cpp's keys, written by
converters for models whose authors publish settings), the catalogue entry. A request
that sets either field is obeyed exactly, with OpenAI's meaning (the other field 1.0, no
top-k). What was applied goes on the answer's last chunk, and from there into the route.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rung.types import ChatRequest, Sampling

OPENAI_DEFAULT = Sampling(temperature=1.0, top_p=1.0, top_k=0, source="default")

# llama.cpp's metadata keys for an author's recommended sampling (llama_model_meta_key).
GGUF_KEYS = {"temperature": "general.sampling.temp", "top_p": "general.sampling.top_p",
             "top_k": "general.sampling.top_k"}


def recommended(temperature: float | None = None, top_p: float | None = None,
                top_k: int | None = None) -> Sampling | None:
    """A model's recommendation from whichever fields are known (None: none is)."""
    if temperature is None and top_p is None and top_k is None:
        return None
    return Sampling(temperature=1.0 if temperature is None else float(temperature),
                    top_p=1.0 if top_p is None else float(top_p),
                    top_k=max(0, int(top_k or 0)), source="model")


def from_gguf(metadata: Mapping[str, str]) -> Sampling | None:
    """The recommendation a GGUF file carries (llama-cpp-python gives values as text);
    a value that does not parse is ignored."""
    got: dict[str, float] = {}
    for field, key in GGUF_KEYS.items():
        raw = metadata.get(key)
        if raw is None:
            continue
        try:
            got[field] = float(raw)
        except ValueError:
            continue
    if "temperature" in got and not 0.0 <= got["temperature"] <= 2.0:
        del got["temperature"]
    if "top_p" in got and not 0.0 < got["top_p"] <= 1.0:
        del got["top_p"]
    top_k = got.get("top_k")
    return recommended(got.get("temperature"), got.get("top_p"),
                       None if top_k is None else int(top_k))


def first(*candidates: Sampling | None) -> Sampling | None:
    return next((c for c in candidates if c is not None), None)


def resolve(request: ChatRequest, model: Sampling | None) -> tuple[ChatRequest, Sampling]:
    """The request with concrete sampling, and what that sampling is."""
    if request.temperature is not None or request.top_p is not None:
        applied = Sampling(
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p, top_k=0, source="request")
    else:
        applied = model or OPENAI_DEFAULT
    concrete = dataclasses.replace(request, temperature=applied.temperature,
                                   top_p=applied.top_p, top_k=applied.top_k)
    return concrete, applied
