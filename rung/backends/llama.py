"""The local tier: a GGUF model run in-process by llama.cpp.

Scheduling: each model instance (``instances`` copies, default 1) serves one request at
a time on its own thread; requests wait in one FIFO queue shared by the instances. At
most ``instances + queue_size`` requests are admitted; the next one gets
:class:`~rung.errors.Overloaded` at once (503 with retry-after), so memory stays bounded.
A request whose client went away is skipped if still queued and stopped within one
token if running.

Token logprobs are computed from the raw logits of each step by a logits processor, so
the model needs no ``logits_all`` (which slows prompt evaluation by about 25%).

The prompt is rendered and tokenized in a worker thread before the request queues, so a
prompt that cannot fit is refused at once and never holds the event loop. One much longer
than the context is refused from its length in bytes alone (see :meth:`_prompt`): a
7.5 MB prompt took 10 s of CPU to tokenize before it got its 400.

Prefix reuse (``prefix_cache``, on by default): a request evaluates only the prompt
tokens past the longest prefix it shares with what the model last held, so each step of
an agent loop pays for its new turns, not its whole history. One at a time,
llama-cpp-python's ``Llama.generate`` does this itself (rung holds it to evaluating at
least the batch engine's ``REFEED`` tokens, counts it, and resets the model when reuse is
off); batched, the engine keeps each finished sequence's KV
(:mod:`rung.backends.llama_batch`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import dataclasses
import logging
import os
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rung import sampling
from rung.backends.arrival import ArrivalOrder
from rung.backends.llama_batch import REFEED, BatchEngine, common_prefix
from rung.backends.logprobs import log_softmax, token_logprob
from rung.backends.textstream import StopTextStream
from rung.catalog import BUILTIN, resolve
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.errors import BackendError, ContextLengthExceeded, Overloaded, RequestError, RungError
from rung.tools import more
from rung.tools.grammar import forced, grammar_text, several
from rung.tools.render import knows_tools, offered, template_inputs
from rung.tools.stream import with_tool_calls
from rung.types import ChatRequest, Chunk, Sampling, TokenLogprob, ToolCall, Usage

log = logging.getLogger("rung.backends.llama")

_END = object()

# llama.cpp's model loading touches process-wide state: loading two models at once from
# two threads ended the process silently (exit status 0, no output). Loads take turns.
_LOAD_LOCK = threading.Lock()

# Threads that render and tokenize prompts. llama.cpp's tokenizer releases the GIL, and
# a prompt long enough to take more than ~0.3 s is refused before it is tokenized.
PROMPT_THREADS = 4
_C_SPACE = b" \t\n\v\f\r"  # what C's isspace() is true of: llama.cpp strips these


@dataclass(eq=False)
class _Job:
    request: ChatRequest
    loop: asyncio.AbstractEventLoop
    tokens: list[int] = field(default_factory=list)
    max_new: int = 0
    out: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.perf_counter)
    queue_ms: float = 0.0

    def emit(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)

    def end(self) -> None:
        self.emit(_END)


class _LogprobCapture:
    """A llama-cpp logits processor that keeps the log-softmax of the last step."""

    def __init__(self) -> None:
        self.last: np.ndarray[Any, np.dtype[np.float32]] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.last = log_softmax(np.asarray(scores, dtype=np.float32))
        return scores


def _quiet_openmp() -> None:
    """Make llama.cpp's OpenMP threads sleep instead of spin while they wait.

    Measured here (2 cores, another process busy on both): 32 greedy tokens took 64 s on
    the first call with OpenMP's default active wait and 0.8 s with a passive wait; later
    calls 1.0 s vs 0.5 s. The gateway's own event loop shares the cores with the model,
    so rung asks for the passive policy unless the operator set one. It must be set
    before libgomp loads, that is before llama_cpp is first imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class LlamaBackend:
    """A :class:`rung.backends.base.Backend` over llama-cpp-python."""

    def __init__(self, name: str, cfg: LlamaBackendConfig, *, catalog: CatalogConfig) -> None:
        self.name = name
        self._cfg = cfg
        self._catalog = catalog
        self._llms: list[Any] = []
        self._formatter: Any = None
        self._native_tools = False  # whether the chat template renders tools itself
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._prep: concurrent.futures.ThreadPoolExecutor | None = None  # prompt threads
        self._closed = False
        self._admitted = 0
        self._running = 0
        self._running_lock = threading.Lock()
        self._loaded = asyncio.Event()
        self._load_error: BaseException | None = None
        self._grammars: dict[str, Any] = {}
        self.model_path: str | None = None
        self.n_ctx = cfg.n_ctx
        self._engine: BatchEngine | None = None
        self._piece_lock = threading.Lock()
        self._max_piece: int | None = None  # bytes in the vocabulary's longest token
        self._strips = False  # whether a special token swallows whitespace next to it
        self._decide: tuple[Any, Any] | None = None  # tokens that add a call or end the list
        self._arrivals = ArrivalOrder()  # prompts prepared in parallel queue in arrival order
        self._cached = 0  # prompt tokens the one-at-a-time path took from the model's KV
        # Sampling for requests that set none, known once the model is loaded (requests
        # wait for that): the config's, then the GGUF's, then the catalogue's.
        self.sampling: Sampling | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self._load_error is None

    @property
    def queue_depth(self) -> int:
        waiting = self._engine.waiting if self._engine is not None else 0
        return waiting + (self._queue.qsize() if self._queue is not None else 0)

    @property
    def in_flight(self) -> int:
        return self._admitted

    @property
    def running(self) -> int:
        """Generations executing on model threads right now."""
        return self._running + (self._engine.running if self._engine is not None else 0)

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from kept KV instead of evaluated, since the model loaded
        (the prefix cache's effect; 0 with ``prefix_cache = false``)."""
        return self._cached + (self._engine.cached_tokens if self._engine is not None else 0)

    @property
    def capacity(self) -> int:
        """Requests that can generate at once (batch slots, or model instances)."""
        return max(self._cfg.instances, self._cfg.parallel)

    def _load(self) -> list[Any]:
        _quiet_openmp()
        from llama_cpp import Llama  # heavy: imported where used

        path = resolve(self._cfg.model, catalog=self._catalog)
        self.model_path = str(path)
        with _LOAD_LOCK:
            llms = [Llama(model_path=str(path), n_ctx=self._cfg.n_ctx,
                          n_batch=self._cfg.n_batch, n_threads=self._cfg.n_threads,
                          n_threads_batch=self._cfg.n_threads, verbose=False)
                    for _ in range(self._cfg.instances)]
        self._formatter = _chat_formatter(llms[0])
        own, entry = self._cfg.sampling, BUILTIN.get(self._cfg.model)
        self.sampling = sampling.first(
            None if own is None else sampling.recommended(own.temperature, own.top_p, own.top_k),
            sampling.from_gguf(llms[0].metadata),
            None if entry is None else entry.sampling)
        self._native_tools = knows_tools(_template(llms[0]))
        if self._cfg.parallel > 1:
            self._engine = BatchEngine(llms[0], name=self.name, slots=self._cfg.parallel,
                                       n_ctx=self._cfg.n_ctx, n_batch=self._cfg.n_batch,
                                       n_threads=self._cfg.n_threads,
                                       prefix_cache=self._cfg.prefix_cache)
        return llms

    async def start(self) -> None:
        if self._queue is not None:
            await self._loaded.wait()
            if self._load_error is not None:
                raise self._load_error
            return
        self._queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._cfg.instances, thread_name_prefix=f"rung-{self.name}")
        self._prep = concurrent.futures.ThreadPoolExecutor(
            max_workers=PROMPT_THREADS, thread_name_prefix=f"rung-{self.name}-prompt")
        loop = asyncio.get_running_loop()
        try:
            self._llms = await loop.run_in_executor(self._executor, self._load)
        except RungError as exc:
            self._load_error = exc
            raise
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            self._load_error = BackendError(f"tier {self.name}: could not load model: {exc}")
            raise self._load_error from exc
        finally:
            self._loaded.set()
        self._workers = [asyncio.create_task(self._worker(llm)) for llm in self._llms]
        log.info("tier %s: loaded %s x%d", self.name, self.model_path, len(self._llms))

    async def aclose(self) -> None:
        self._closed = True
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._prep is not None:  # prompts being prepared finish (they read the model)
            self._prep.shutdown(wait=True)
        if self._executor is not None:  # no thread may still use a model freed below
            self._executor.shutdown(wait=True, cancel_futures=True)
        for llm in self._llms:
            llm.close()
        self._llms = []

    # -- serving ---------------------------------------------------------------------
    async def _worker(self, llm: Any) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            if not job.cancelled.is_set():
                await asyncio.shield(loop.run_in_executor(self._executor, self._run, llm, job))

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if offered(request):
            return with_tool_calls(request, self._stream(request))
        return self._stream(request)

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        if not self._loaded.is_set():
            await self.start()
        if self._load_error is not None:
            raise self._load_error
        assert self._queue is not None
        if self._admitted >= self.capacity + self._cfg.queue_size:
            raise Overloaded(f"tier {self.name}: queue is full ({self._cfg.queue_size} waiting)")
        request, applied = sampling.resolve(request, self.sampling)
        job = _Job(request, asyncio.get_running_loop())
        # Grammar-held requests, and those that may be asked for more calls (which needs
        # a grammar and the KV the single-sequence path keeps), take turns.
        batched = (self._engine is not None and request.response_format.type == "text"
                   and not forced(request)
                   and not (self._cfg.more_calls and more.applies(request)))
        # A request holds its admission until its consumer is done with it (not until the
        # thread winds down), so a client that sends the next request the moment it has
        # the last answer is never refused for a slot that is being released. It is taken
        # before the prompt is prepared, so requests preparing at once all count.
        self._admitted += 1
        ticket = self._arrivals.take()
        engine = self._engine if batched else None
        if engine is not None:
            engine.announce()
        try:
            if self._closed:
                raise BackendError(f"tier {self.name}: the model was unloaded")
            job.tokens, job.max_new = await job.loop.run_in_executor(
                self._prep, self._prompt, request)
            await self._arrivals.turn(ticket)
            if self._closed:  # unloaded while the prompt was prepared
                raise BackendError(f"tier {self.name}: the model was unloaded")
            if engine is not None:
                engine.submit(job, job.tokens, job.max_new)
                engine = None
            else:
                self._queue.put_nowait(job)
            self._arrivals.leave(ticket)
            while True:
                item = await job.out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                if item.finish_reason is not None:
                    item = dataclasses.replace(item, sampling=applied)
                yield item
        finally:
            job.cancelled.set()
            self._admitted -= 1
            self._arrivals.leave(ticket)
            if engine is not None:  # announced, never submitted
                engine.withdraw()

    # -- the generation thread ------------------------------------------------------------
    def _grammar(self, request: ChatRequest) -> Any:
        rf = request.response_format
        tools = forced(request)
        if rf.type == "text" and not tools:
            return None
        import json

        from llama_cpp import llama_grammar

        if tools:
            many = several(request)
            key = f"tools:{many}:" + json.dumps([[t.name, t.parameters] for t in tools],
                                                sort_keys=True)
        else:
            key = json.dumps(rf.schema, sort_keys=True) if rf.type == "json_schema" else ""
        if key not in self._grammars:
            try:
                if tools:
                    g = llama_grammar.LlamaGrammar.from_string(
                        grammar_text(tools, several=many), verbose=False)
                elif rf.type == "json_schema":
                    g = llama_grammar.LlamaGrammar.from_json_schema(key, verbose=False)
                else:
                    g = llama_grammar.LlamaGrammar.from_string(
                        llama_grammar.JSON_GBNF, verbose=False)
            except Exception as exc:
                raise RequestError(f"unsupported JSON schema: {exc}",
                                   param="tools" if tools else "response_format") from exc
            self._grammars[key] = g
        return self._grammars[key]

    def _run(self, llm: Any, job: _Job) -> None:
        job.queue_ms = (time.perf_counter() - job.enqueued) * 1000
        with self._running_lock:
            self._running += 1
        try:
            self._generate(llm, job)
        except RungError as exc:
            job.emit(exc)
        except Exception as exc:
            log.exception("tier %s: generation failed", self.name)
            job.emit(BackendError(f"tier {self.name}: generation failed: {exc}"))
        finally:
            with self._running_lock:
                self._running -= 1
        job.emit(_END)

    def _generate(self, llm: Any, job: _Job) -> None:
        import llama_cpp

        req = job.request
        t_start = time.perf_counter()
        tokens, max_new = job.tokens, job.max_new
        n_prompt = len(tokens)
        capture = _LogprobCapture() if req.logprobs else None
        processors = llama_cpp.LogitsProcessorList([capture]) if capture else None
        llm.set_seed(req.seed if req.seed is not None else random.getrandbits(31))
        vocab = llm._model.vocab
        text = StopTextStream(req.stop)
        n_gen, finish, reused, eog = 0, "length", 0, False
        written: list[bytes] = []  # the whole answer, for a continuation's plan
        if self._cfg.prefix_cache:
            reused = _keep_prefix(llm, tokens)
            with self._running_lock:
                self._cached += reused
        else:
            llm.reset()  # forget what the model holds: generate() then evaluates it all
        gen = llm.generate(
            tokens, top_k=req.top_k, top_p=_known(req.top_p), min_p=0.0, typical_p=1.0,
            temp=_known(req.temperature), repeat_penalty=1.0, grammar=self._grammar(req),
            logits_processor=processors,
        )
        try:
            for tok in gen:
                if job.cancelled.is_set():
                    return
                if llama_cpp.llama_vocab_is_eog(vocab, tok):
                    finish, eog = "stop", True
                    break
                n_gen += 1
                piece = llm.detokenize([tok])
                written.append(piece)
                delta = text.push(piece)
                lps: tuple[TokenLogprob, ...] = ()
                if capture is not None and capture.last is not None:
                    lps = (token_logprob(llm, capture.last, tok, piece, req.top_logprobs),)
                if delta or lps:
                    job.emit(Chunk(text=delta, logprobs=lps))
                if text.stopped:
                    finish = "stop"
                    break
                if n_gen >= max_new:
                    break
        finally:
            gen.close()
        tail = text.flush()
        if eog and self._cfg.more_calls and more.applies(req) and n_gen < max_new:
            plan = more.plan(b"".join(written).decode("utf-8", "replace"))
            if plan is not None:
                if tail:
                    job.emit(Chunk(text=tail))
                    tail = ""
                added, extra = self._continue(llm, job, plan, max_new - n_gen)
                n_gen += extra
                if added:
                    job.emit(Chunk(text=plan.render(added)))
        job.emit(Chunk(text=tail, finish_reason=finish,  # type: ignore[arg-type]
                       usage=Usage(prompt_tokens=n_prompt, completion_tokens=n_gen,
                                   cached_tokens=reused),
                       queue_ms=round(job.queue_ms, 3),
                       compute_s=round(time.perf_counter() - t_start, 6)))

    def _continue(self, llm: Any, job: _Job, plan: more.Continuation,
                  budget: int) -> tuple[list[ToolCall], int]:
        """Further calls after the free answer's (see :mod:`rung.tools.more`), and the
        tokens generated for them. At the end of each call in the open list the model goes
        on when its share of going on is at least ``more_calls_share``; the next call is
        then written under a grammar. The prompt's KV is still held, so only the list's
        tokens are evaluated, whether or not ``prefix_cache`` is on."""
        import llama_cpp

        req = job.request
        go_on, close = self._decision_tokens(llm)
        vocab = llm._model.vocab
        calls, added, n = list(plan.calls), list[ToolCall](), 0
        while n < budget and len(calls) < more.MAX_CALLS and not job.cancelled.is_set():
            head = _tokenize(llm, more.list_prefix(calls).encode("utf-8"), add_bos=False,
                             limit=self._cfg.n_ctx)[0]
            tokens = job.tokens + head
            if not head or len(tokens) + 8 > self._cfg.n_ctx:
                break
            if more.go_on_share(_logits_after(llm, tokens), go_on,
                                close) < self._cfg.more_calls_share:
                break
            _keep_prefix(llm, tokens)
            out: list[bytes] = []  # decoded whole: a character may span tokens
            gen = llm.generate(
                tokens, top_k=req.top_k, top_p=_known(req.top_p), min_p=0.0, typical_p=1.0,
                temp=_known(req.temperature), repeat_penalty=1.0,
                grammar=self._more_grammar(req))
            try:
                for tok in gen:  # the grammar ends it with the call: then end of turn
                    if job.cancelled.is_set() or llama_cpp.llama_vocab_is_eog(vocab, tok):
                        break
                    n += 1
                    out.append(llm.detokenize([tok]))
                    if n >= budget or len(tokens) + len(out) >= self._cfg.n_ctx:
                        break
            finally:
                gen.close()
            call = more.next_call(b"".join(out).decode("utf-8", "replace"))
            if call is None or more.repeats(calls, call):
                break  # cut off, or the model repeats itself: what it added before stands
            calls.append(call)
            added.append(call)
        return added, n

    def _decision_tokens(self, llm: Any) -> tuple[Any, Any]:
        """The tokens that go on to another call or close the list (computed once: one
        pass over the vocabulary, about 0.3 s for 150k tokens)."""
        with self._piece_lock:
            if self._decide is None:
                import llama_cpp

                n = llama_cpp.llama_vocab_n_tokens(llm._model.vocab)
                self._decide = more.decision_tokens(
                    [llm.detokenize([t]).decode("utf-8", "replace") for t in range(n)])
            return self._decide

    def _more_grammar(self, request: ChatRequest) -> Any:
        import json

        from llama_cpp import llama_grammar

        key = "more:" + json.dumps(
            [[t.name, t.parameters] for t in request.tools], sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = llama_grammar.LlamaGrammar.from_string(
                more.grammar_text(request.tools), verbose=False)
        return self._grammars[key]

    def _render(self, request: ChatRequest) -> tuple[bytes, bool]:
        """The prompt through the chat template, and whether to add BOS."""
        messages, tools = template_inputs(request, native=self._native_tools,
                                          after_result=self._cfg.after_tool_result)
        fmt = self._formatter(messages=messages, tools=tools)
        return fmt.prompt.encode("utf-8"), not fmt.added_special

    def _prompt(self, request: ChatRequest) -> tuple[list[int], int]:
        """The prompt's tokens and the completion budget; raises ContextLengthExceeded.

        Blocking (seconds for a long prompt): runs in a worker thread. A prompt of more
        than ``n_ctx`` tokens never fits, so no more than ``n_ctx`` tokens are kept. Before
        that, a prompt is refused from its size alone when it must have at least ``n_ctx``
        tokens: with the BPE and SentencePiece tokenizers of llama.cpp every token stands
        for a piece of the text (they do not normalise it away), and no token's piece is
        longer than the vocabulary's longest, so ``tokens >= bytes / longest piece``
        (SmolLM2: 81 bytes, so prompts over 166 kB). Only whitespace can be dropped (next
        to a special token marked lstrip/rstrip), so with such tokens only the other bytes
        count. That bound errs only towards tokenizing: a prompt that could fit is never
        refused by it.
        """
        data, add_bos = self._render(request)
        n_ctx = self._cfg.n_ctx
        # Only a prompt far longer than the context (16 bytes a token) looks for the
        # longest piece, so ordinary requests never wait while it is found.
        bound = self._piece_bound() if len(data) >= 16 * n_ctx else None
        if bound is not None:
            longest, strips = bound
            size = len(data.translate(None, _C_SPACE)) if strips else len(data)
            if size >= n_ctx * longest:
                self._too_long(request, -(-size // longest), at_least=True)
        tokens, n_prompt = _tokenize(self._llms[0], data, add_bos=add_bos, limit=n_ctx)
        return tokens, self._max_new(request, n_prompt)

    def _piece_bound(self) -> tuple[int, bool] | None:
        """Bytes in the longest token's text, and whether a special token drops the
        whitespace next to it; None for tokenizers the bound does not cover (WordPiece
        and Unigram normalise the text, so a token may stand for more of it)."""
        import llama_cpp

        with self._piece_lock:  # computed once (0.3 s for 49k tokens), in a worker thread
            if self._max_piece is None:
                vocab = self._llms[0]._model.vocab
                kind = llama_cpp.llama_vocab_type(vocab)
                if kind not in (llama_cpp.LLAMA_VOCAB_TYPE_SPM, llama_cpp.LLAMA_VOCAB_TYPE_BPE):
                    self._max_piece = 0
                else:
                    buf = ctypes.create_string_buffer(1)
                    strip = llama_cpp.LLAMA_TOKEN_ATTR_LSTRIP | llama_cpp.LLAMA_TOKEN_ATTR_RSTRIP
                    longest, strips = 0, False
                    for t in range(llama_cpp.llama_vocab_n_tokens(vocab)):
                        # With no room, token_to_piece returns minus the piece's length.
                        n = abs(llama_cpp.llama_token_to_piece(vocab, t, buf, 0, 0, True))
                        longest = max(longest, n)
                        strips = strips or bool(llama_cpp.llama_vocab_get_attr(vocab, t) & strip)
                    self._max_piece, self._strips = longest, strips
            return (self._max_piece, self._strips) if self._max_piece else None

    def _max_new(self, request: ChatRequest, n_prompt: int) -> int:
        """The completion budget; raises when prompt plus completion cannot fit."""
        n_ctx = self._cfg.n_ctx
        if request.max_tokens is not None:
            max_new = request.max_tokens
        else:  # the rest of the context, or the tier's own cap when that is less
            max_new = n_ctx - n_prompt
            if self._cfg.max_tokens is not None and max_new > 0:
                max_new = min(max_new, self._cfg.max_tokens)
        if max_new < 1 or n_prompt + max_new > n_ctx:
            self._too_long(request, n_prompt, at_least=False)
        return max_new

    def _too_long(self, request: ChatRequest, n_prompt: int, *, at_least: bool) -> None:
        n_ctx, least = self._cfg.n_ctx, "at least " if at_least else ""
        head = f"This model's maximum context length is {n_ctx} tokens. However, "
        if request.max_tokens is None:
            raise ContextLengthExceeded(
                f"{head}your messages resulted in {least}{n_prompt} tokens. Please reduce "
                f"the length of the messages.", param="messages")
        max_new = request.max_tokens
        raise ContextLengthExceeded(
            f"{head}you requested {least}{n_prompt + max_new} tokens ({least}{n_prompt} in "
            f"the messages, {max_new} in the completion).", param="messages")

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the prompt takes on this model (used by estimates and tests)."""
        data, add_bos = self._render(request)
        return _tokenize(self._llms[0], data, add_bos=add_bos, limit=1)[1]


def _known(value: float | None) -> float:
    """A sampling value :func:`rung.sampling.resolve` has set."""
    assert value is not None
    return value


def _keep_prefix(llm: Any, tokens: list[int]) -> int:
    """Prompt tokens ``llm.generate(tokens)`` will take from its KV rather than evaluate.

    ``Llama.generate`` keeps the longest common prefix of the prompt and the tokens the
    model holds, and evaluates only the rest; but when all of the prompt is held it
    evaluates just its last token again, whose logits then differ from a whole
    evaluation's (see ``REFEED``). Forgetting all but the first ``len(tokens) - REFEED``
    held tokens first (``generate`` drops their KV itself) makes it evaluate at least
    ``REFEED``, and makes the kept prefix exactly the common one.
    """
    llm.n_tokens = min(llm.n_tokens, max(len(tokens) - REFEED, 0))
    return common_prefix(llm.input_ids[:llm.n_tokens], tokens)


def _logits_after(llm: Any, tokens: list[int]) -> Any:
    """The next token's logits after ``tokens``, evaluating only what ``llm`` does not
    already hold (at least ``REFEED`` tokens, as :func:`_keep_prefix` says why)."""
    import llama_cpp

    keep = _keep_prefix(llm, tokens)
    llm.n_tokens = keep
    llm.eval(tokens[keep:])
    n_vocab = llama_cpp.llama_vocab_n_tokens(llm._model.vocab)
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm._ctx.ctx), shape=(n_vocab,))


def _tokenize(llm: Any, data: bytes, *, add_bos: bool, limit: int) -> tuple[list[int], int]:
    """``(tokens, n)``: the tokens of ``data`` when there are at most ``limit``, else
    ``([], n)``. One pass of llama.cpp's tokenizer into a buffer of ``limit`` tokens
    (``Llama.tokenize`` makes two passes over a text longer than the model's training
    context, then builds a Python list of every token while holding the GIL)."""
    import llama_cpp

    buf = (llama_cpp.llama_token * limit)()
    n = llama_cpp.llama_tokenize(llm._model.vocab, data, len(data), buf, limit, add_bos, True)
    if n == -(2**31):  # llama.cpp's overflow sign: more tokens than an int32 counts
        raise ContextLengthExceeded("The messages are too long to tokenize.", param="messages")
    if n < 0:
        return [], -n
    return list(buf[:n]), n


_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _template(llm: Any) -> str:
    """The model's own chat template from its GGUF metadata (ChatML when it has none)."""
    return str(llm.metadata.get("tokenizer.chat_template", _CHATML))


def _chat_formatter(llm: Any) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=_template(llm),
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )
