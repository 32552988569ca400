"""Continuous batching for a local model: many requests decode together on one context.

On a CPU, one decode step of a small model costs about as much for four sequences as for
one (the weights are read from memory once per step either way), so a model that serves
several requests at a time answers them with several times the throughput of one that
takes turns (measured: ``bench/batch_bench.py``). The engine keeps up to ``slots``
sequences in one llama.cpp context, each with its own KV cells. Each step it builds one
batch: the next token of every sequence that is generating, then prompt tokens of newly
admitted sequences up to ``n_batch``; it decodes, samples each sequence from its own
logits, and streams the piece to that request. A finished or cancelled sequence leaves
its slot at once and the next queued request takes it (no waiting for the batch).

Prefix reuse: the steps of one agent conversation resend the same long prefix (system
prompt, tools, history) with a few new tokens at the end. A finished sequence keeps its
KV cells and the engine remembers which tokens they hold; a new request takes the free
slot whose tokens share the longest common prefix with its prompt (on ties, or when no
slot shares half of it: the slot free the longest), drops only the cells past that
prefix and evaluates only the rest of its prompt (measured: ``bench/agent_loop_bench.py``).
Each sequence has its own KV stream, so a kept prefix costs no memory that was not
already reserved for its slot, and the answer is the same, bit for bit, as from scratch.

Compute is attributed to requests: each step's time is shared among the sequences in it
in proportion to the tokens each put into the batch, so ``compute_s`` on a request's last
chunk sums, over all requests, to the engine's busy time.

Sampling happens here, in NumPy: greedy at temperature 0, else temperature, top-k and top-p from
a per-request generator seeded by the request's seed. Grammar-constrained requests (JSON
mode) are not batched; the backend sends them down its single-sequence path.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rung.backends.logprobs import log_softmax, token_logprob
from rung.backends.textstream import StopTextStream
from rung.errors import BackendError
from rung.types import ChatRequest, Chunk, TokenLogprob, Usage

log = logging.getLogger("rung.backends.llama")


# The longest an idle engine waits for announced requests before it starts without them
# (preparing a prompt that fits takes milliseconds; a longer one is refused unseen).
GATHER_S = 0.25

# A request reuses the slot holding its longest prefix only when that prefix is at least
# this share of its prompt; else it takes the slot free the longest, as without reuse. So
# a prompt that shares only the chat template's first tokens with a kept conversation does
# not evict it while another slot is free (llama.cpp's server: --slot-prompt-similarity).
MIN_SHARE = 0.5
# Prompt tokens evaluated again even when all of the prompt is kept. Its last token must
# be, for the logits that choose the first new token; one more, because llama.cpp's CPU
# kernels give a batch of one token other logits than a longer batch (measured on
# SmolLM2, x86 AVX2: 3 prompts in 4 up to 0.07 apart in a logprob) while tails of 2 to 8
# tokens gave the logits of the whole 382-token prompt bit for bit. A prompt from kept KV
# then answers exactly as one evaluated whole (tests/backends/test_prefix_cache.py).
REFEED = 2


class Job(Protocol):
    """What the engine needs from a request: the request, and where its chunks go."""

    request: ChatRequest
    cancelled: threading.Event
    enqueued: float
    queue_ms: float

    def emit(self, item: Any) -> None:
        """Hand a chunk or an exception to the waiting consumer."""

    def end(self) -> None:
        """Tell the consumer nothing more will come."""


@dataclass(eq=False)
class _Slot:
    seq: int
    job: Job
    tokens: list[int]
    max_new: int
    rng: np.random.Generator
    text: StopTextStream
    fed: int = 0  # prompt tokens already in the batch (or kept from the slot's last use)
    cached: int = 0  # prompt tokens kept from the slot's last use (not evaluated)
    decoded: list[int] = field(default_factory=list)  # generated tokens fed back in
    pos: int = 0
    next_token: int | None = None
    n_gen: int = 0
    compute_s: float = 0.0
    in_batch: int = 0  # tokens this slot put into the current batch
    logits_at: int = -1  # index in the current batch whose logits it reads
    finished: bool = field(default=False)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if len(differ) else n


def sample(logits: np.ndarray[Any, Any], *, temperature: float, top_p: float,
           rng: np.random.Generator, top_k: int = 0) -> int:
    """Greedy at temperature 0; else softmax(logits / T) over the ``top_k`` most likely
    tokens (0: all), truncated to the top-p mass."""
    if temperature <= 0.0:
        return int(logits.argmax())
    z = logits.astype(np.float64) / temperature
    if 0 < top_k < len(z):
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


class BatchEngine:
    """One thread, one context of ``slots`` sequences, fed from a FIFO queue."""

    def __init__(self, llm: Any, *, name: str, slots: int, n_ctx: int, n_batch: int,
                 n_threads: int, prefix_cache: bool = True) -> None:
        import llama_cpp

        self.name, self.slots, self.n_ctx, self.n_batch = name, slots, n_ctx, n_batch
        self.prefix_cache = prefix_cache
        self._llm = llm
        # The single-sequence context's own settings (attention kernel, KV types...), so
        # a request decoded alone here matches the single-sequence path.
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx * slots
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = n_threads
        # One KV stream per sequence: attention then spans a sequence's own cells, not
        # every sequence's (measured on SmolLM2, 16 sequences of ~300 tokens: 1.4x the
        # throughput of a unified cache); each sequence gets n_ctx cells.
        params.kv_unified = False
        self._ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self._ctx:
            raise BackendError(f"tier {name}: could not create a {slots}-sequence context")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llm._model.vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._incoming = 0  # announced requests whose prompts are still being prepared
        self._arrivals = threading.Condition()
        self._active: list[_Slot] = []
        self._free = list(range(slots))  # the longest free first
        self._kept: list[list[int]] = [[] for _ in range(slots)]  # tokens in each KV stream
        self._closed = False
        self.busy_s = 0.0
        self.cached_tokens = 0  # prompt tokens taken from kept KV instead of evaluated
        self._thread = threading.Thread(target=self._loop, name=f"rung-{name}-batch",
                                        daemon=True)
        self._thread.start()

    # -- the request side -------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> int:
        return len(self._active)

    def announce(self) -> None:
        """A request is coming: its prompt is being prepared."""
        with self._arrivals:
            self._incoming += 1

    def withdraw(self) -> None:
        """An announced request will not come after all."""
        with self._arrivals:
            self._incoming -= 1
            self._arrivals.notify_all()

    def submit(self, job: Job, tokens: list[int], max_new: int) -> None:
        """Queue an announced request."""
        self._queue.put((job, tokens, max_new))
        self.withdraw()

    def close(self) -> None:
        import llama_cpp

        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._thread.is_alive():  # pragma: no cover - a decode that never returns
            log.error("tier %s: batch thread did not stop", self.name)
            return
        # Nobody is left waiting: requests still queued or running end with an error.
        gone = BackendError(f"tier {self.name}: the model was unloaded")
        for slot in list(self._active):
            self._finish(slot, gone)
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None:
                entry[0].emit(gone)
                entry[0].end()
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)

    # -- the engine thread ------------------------------------------------------------
    def _admit(self, block: bool) -> None:
        while self._free and not self._closed:
            try:
                entry = self._queue.get(block=block and not self._active, timeout=None)
            except queue.Empty:
                return
            if entry is None:
                return
            job, tokens, max_new = entry
            if block and not self._active:
                self._gather_arrivals()
            if job.cancelled.is_set():
                job.end()
                continue
            job.queue_ms = (time.perf_counter() - job.enqueued) * 1000
            req: ChatRequest = job.request
            seed = req.seed if req.seed is not None else random.getrandbits(31)
            seq, keep = self._take_slot(tokens)
            self.cached_tokens += keep
            self._active.append(_Slot(
                seq=seq, job=job, tokens=tokens, max_new=max_new,
                rng=np.random.default_rng(seed), text=StopTextStream(req.stop),
                fed=keep, pos=keep, cached=keep))
            block = False

    def _take_slot(self, tokens: list[int]) -> tuple[int, int]:
        """A free slot for a prompt, and how many of its kept KV cells the prompt reuses:
        the slot whose kept tokens share the longest prefix with it, if that is at least
        ``MIN_SHARE`` of the prompt, else (and on ties) the one free the longest, as
        without reuse. The last ``REFEED`` prompt tokens are always evaluated again."""
        import llama_cpp

        best, keep = 0, 0
        if self.prefix_cache:
            shared = [common_prefix(self._kept[seq], tokens) for seq in self._free]
            longest = max(shared)
            if longest >= MIN_SHARE * len(tokens):
                best = shared.index(longest)
            keep = shared[best]
        seq = self._free.pop(best)
        keep = max(0, min(keep, len(tokens) - REFEED))
        self._kept[seq] = []
        if not llama_cpp.llama_memory_seq_rm(self._mem, seq, keep, -1):
            # A memory that cannot drop part of a sequence (recurrent models): start over.
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
            keep = 0
        return seq, keep

    def _gather_arrivals(self) -> None:
        """Starting from idle, wait (briefly) for requests whose prompts are still being
        prepared, so that requests that arrived together start in one batch, whatever
        the timing of the threads that prepared them."""
        with self._arrivals:
            self._arrivals.wait_for(lambda: self._incoming <= 0 or self._closed,
                                    timeout=GATHER_S)

    def _loop(self) -> None:
        while not self._closed:
            self._admit(block=True)
            if not self._active:
                continue
            try:
                self._step()
            except Exception as exc:  # a failed decode fails the requests in it, not the tier
                log.exception("tier %s: batched decode failed", self.name)
                for slot in list(self._active):
                    self._finish(slot, BackendError(f"tier {self.name}: generation failed: "
                                                    f"{exc}"))

    def _add(self, tok: int, pos: int, seq: int, logits: bool) -> int:
        b, i = self._batch, self._batch.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
        b.seq_id[i][0], b.logits[i] = seq, logits
        b.n_tokens = i + 1
        return int(i)

    def _step(self) -> None:
        import llama_cpp

        for slot in [s for s in self._active if s.job.cancelled.is_set()]:
            self._finish(slot, None)
        self._batch.n_tokens = 0
        budget = self.n_batch
        for slot in self._active:  # generating sequences first: one token each
            slot.in_batch, slot.logits_at = 0, -1
            if slot.next_token is not None:
                slot.decoded.append(slot.next_token)
                slot.logits_at = self._add(slot.next_token, slot.pos, slot.seq, True)
                slot.pos, slot.next_token, slot.in_batch = slot.pos + 1, None, 1
                budget -= 1
        for slot in self._active:  # then prompt chunks, oldest request first
            left = len(slot.tokens) - slot.fed
            if left == 0 or slot.in_batch or budget <= 0:
                continue
            take = min(left, budget)
            for j in range(take):
                last = slot.fed + j == len(slot.tokens) - 1
                i = self._add(slot.tokens[slot.fed + j], slot.pos + j, slot.seq, last)
                if last:
                    slot.logits_at = i
            slot.fed, slot.pos, slot.in_batch = slot.fed + take, slot.pos + take, take
            budget -= take
        n = self._batch.n_tokens
        if n == 0:
            return
        t0 = time.perf_counter()
        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        dt = time.perf_counter() - t0
        self.busy_s += dt
        if rc != 0:
            raise BackendError(f"llama_decode returned {rc}")
        for slot in list(self._active):
            slot.compute_s += dt * slot.in_batch / n
            if slot.logits_at >= 0:
                self._next(slot, llama_cpp.llama_get_logits_ith(self._ctx, slot.logits_at))

    def _next(self, slot: _Slot, ptr: Any) -> None:
        import llama_cpp

        req: ChatRequest = slot.job.request
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()
        assert req.temperature is not None and req.top_p is not None  # sampling.resolve's
        tok = sample(logits, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                     rng=slot.rng)
        if llama_cpp.llama_vocab_is_eog(self._vocab, tok):
            self._finish(slot, None, finish="stop")
            return
        slot.n_gen += 1
        piece = self._llm.detokenize([tok])
        delta = slot.text.push(piece)
        lps: tuple[TokenLogprob, ...] = ()
        if req.logprobs:
            lps = (token_logprob(self._llm, log_softmax(logits), tok, piece,
                                  req.top_logprobs),)
        if delta or lps:
            slot.job.emit(Chunk(text=delta, logprobs=lps))
        if slot.text.stopped:
            self._finish(slot, None, finish="stop")
        elif slot.n_gen >= slot.max_new:
            self._finish(slot, None, finish="length")
        else:
            slot.next_token = tok

    def _finish(self, slot: _Slot, error: BaseException | None, *,
                finish: str = "length") -> None:
        import llama_cpp

        if slot.finished:
            return
        slot.finished = True
        self._active.remove(slot)
        if self.prefix_cache and error is None:
            # Every token put into a batch so far was decoded (a failed decode ends its
            # requests with an error), so the stream holds exactly these.
            self._kept[slot.seq] = slot.tokens[:slot.fed] + slot.decoded
        else:  # after an error the stream's contents are unknown
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            self._kept[slot.seq] = []
        self._free.append(slot.seq)
        job = slot.job
        if error is not None:
            job.emit(error)
        elif not job.cancelled.is_set():
            job.emit(Chunk(text=slot.text.flush(), finish_reason=finish,  # type: ignore[arg-type]
                           usage=Usage(prompt_tokens=len(slot.tokens),
                                       completion_tokens=slot.n_gen,
                                       cached_tokens=slot.cached),
                           queue_ms=round(job.queue_ms, 3),
                           compute_s=round(slot.compute_s, 6)))
        job.end()

