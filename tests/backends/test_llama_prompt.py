"""A prompt that cannot fit the context is refused, cheaply, and one that fits never is
(the real embedded model, on a small context so the prompts stay small)."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Iterator

import pytest

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.errors import ContextLengthExceeded
from rung.types import ChatRequest, Message

N_CTX = 256

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module", params=[1, 2], ids=["single", "batched"])
def tier(request: pytest.FixtureRequest,
         loop: asyncio.AbstractEventLoop) -> Iterator[LlamaBackend]:
    b = LlamaBackend("t", LlamaBackendConfig(n_ctx=N_CTX, parallel=request.param),
                     catalog=CatalogConfig())
    loop.run_until_complete(b.start())
    yield b
    loop.run_until_complete(b.aclose())


def _req(content: str, max_tokens: int | None = 8) -> ChatRequest:
    return ChatRequest(messages=(Message("user", content),), max_tokens=max_tokens,
                       temperature=0.0)


def _answer(loop: asyncio.AbstractEventLoop, tier: LlamaBackend, req: ChatRequest) -> str:
    async def run() -> str:
        return "".join([c.text async for c in tier.stream(req)])
    return loop.run_until_complete(run())


def _refusal(loop: asyncio.AbstractEventLoop, tier: LlamaBackend, req: ChatRequest) -> str:
    with pytest.raises(ContextLengthExceeded) as info:
        _answer(loop, tier, req)
    assert info.value.code == "context_length_exceeded" and info.value.param == "messages"
    assert tier.in_flight == 0
    return info.value.message


def _longest_piece(tier: LlamaBackend) -> bytes:
    """The longest token whose text, repeated, is that token repeated (SmolLM2: a
    newline and 80 spaces, 81 bytes, as long as any token gets)."""
    import llama_cpp

    llm = tier._llms[0]
    vocab = llm._model.vocab
    buf = ctypes.create_string_buffer(1024)

    def piece(t: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(vocab, t, buf, 1024, 0, True)
        return buf.raw[:n]

    pieces = [piece(t) for t in range(llama_cpp.llama_vocab_n_tokens(vocab))]
    return next(p for p in sorted(pieces, key=len, reverse=True)
                if len(llm.tokenize(p * 10, add_bos=False, special=True)) == 10)


def test_a_prompt_that_fits_is_answered_however_many_bytes_a_token_takes(
        loop: asyncio.AbstractEventLoop, tier: LlamaBackend) -> None:
    # The worst case for a bound on bytes: every token is the longest piece. 200 of them
    # (16 kB, 63 bytes a token) fit in 256 tokens, and are answered.
    piece = _longest_piece(tier).decode()
    assert tier._piece_bound() == (len(piece.encode()), False) == (81, False)
    fits = _req(piece * 200 + "Say hi.")
    assert tier.count_prompt_tokens(fits) + 8 <= N_CTX
    assert _answer(loop, tier, fits) is not None
    # 300 of them cannot fit: refused from the size alone, as "at least" that many tokens.
    msg = _refusal(loop, tier, _req(piece * 300))
    assert msg.startswith(f"This model's maximum context length is {N_CTX} tokens. However, "
                          "you requested at least ")
    assert tier.count_prompt_tokens(_req(piece * 300)) >= 300


def test_a_prompt_too_long_is_refused_with_its_exact_size_when_counted(
        loop: asyncio.AbstractEventLoop, tier: LlamaBackend) -> None:
    req = _req("hello " * 600)
    n = tier.count_prompt_tokens(req)
    assert n > N_CTX
    assert _refusal(loop, tier, req) == (
        f"This model's maximum context length is {N_CTX} tokens. However, you requested "
        f"{n + 8} tokens ({n} in the messages, 8 in the completion).")
    # Without max_tokens the completion gets what is left, so it was a 502 from llama.cpp
    # (after decoding what it could); it is a 400 like the rest.
    assert _refusal(loop, tier, _req("hello " * 600, max_tokens=None)) == (
        f"This model's maximum context length is {N_CTX} tokens. However, your messages "
        f"resulted in {n} tokens. Please reduce the length of the messages.")
    small = _req("Say hi.")
    assert tier.count_prompt_tokens(small) + 8 <= N_CTX
    assert _refusal(loop, tier, _req("Say hi.", max_tokens=N_CTX)).endswith(
        f"({tier.count_prompt_tokens(small)} in the messages, {N_CTX} in the completion).")
    assert _answer(loop, tier, _req("Say hi.", max_tokens=None))  # fills the rest
