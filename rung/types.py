"""The records every part of rung shares, in one place and free of I/O.

A request moves through rung as these small typed objects:

    ChatRequest (messages, sampling, response format, tools)
      -> Chunk ... Chunk          what a backend streams (text, tool-call pieces, logprobs,
                                  usage)
      -> Answer                   one tier's buffered answer, what a verifier reads
      -> Verdict                  one verifier's view of one answer
      -> Attempt                  one tier's turn: outcome, verdicts, usage, timings, cost
      -> Route                    the whole decision: reason, score, attempts, who answered

``Attempt`` and ``Route`` are frozen: the cascade builds them, everybody else reads them
(the server, the CLI, the evaluator, traces, metrics, telemetry, the dashboard, drift).
A stored trace keeps the route as JSON in the shape :meth:`Route.as_dict` writes, and
:meth:`Route.from_dict` reads any trace ever stored back into these records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import orjson

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for: ``arguments`` is the JSON text exactly as the model
    wrote it (it may not even parse; the caller decides what to do with it)."""

    id: str
    name: str
    arguments: str

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's shape (a completion's ``message.tool_calls`` item; a stored turn's)."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        f = d.get("function") or {}
        return cls(str(d.get("id") or ""), str(f.get("name") or ""),
                   str(f.get("arguments") or ""))


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call ``index`` in a stream: its first piece carries ``id`` and
    ``name``, every piece a fragment of its ``arguments`` (OpenAI's delta shape)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


def assemble_tool_calls(deltas: Iterable[ToolCallDelta]) -> tuple[ToolCall, ...]:
    """The whole calls the pieces ``deltas`` make, in index order."""
    calls: dict[int, list[str]] = {}
    for d in deltas:
        call = calls.setdefault(d.index, ["", "", ""])
        call[0] = d.id or call[0]
        call[1] = d.name or call[1]
        call[2] += d.arguments
    return tuple(ToolCall(*calls[i]) for i in sorted(calls))


Modality = Literal["image", "audio", "file"]
_MODALITY: dict[str, Modality] = {"image_url": "image", "input_audio": "audio", "file": "file"}


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One part of a turn that carries more than text, in the client's order: a text
    part (``text``), or an image, audio or file part passed through to an upstream tier
    as the client sent it (``body``: the part's own OpenAI object, as JSON text)."""

    type: Literal["text", "image_url", "input_audio", "file"]
    text: str = ""
    body: str = ""

    @property
    def modality(self) -> Modality | None:
        return _MODALITY.get(self.type)

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's chat content part."""
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {"type": self.type, self.type: orjson.loads(self.body)}


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. An assistant turn may carry ``tool_calls`` (its content then often
    empty); a ``tool`` turn answers the call ``tool_call_id`` with its content."""

    role: Role
    content: str  # the turn's text (its text parts, joined, when it has parts)
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    # Only for a turn with an image, audio or file part: every part, in order. Local
    # tiers never see such a turn (the gateway routes it to tiers that take it).
    parts: tuple[ContentPart, ...] = ()

    @property
    def modalities(self) -> frozenset[Modality]:
        return frozenset(m for p in self.parts if (m := p.modality) is not None)

    def as_dict(self) -> dict[str, Any]:
        """Role and content, and the tool keys only where present (so a stored turn
        without tools keeps the shape traces always had). A turn with media parts says
        which (``media``), never their bytes: traces keep text."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.parts:
            d["media"] = sorted(self.modalities)
        if self.tool_calls:
            d["tool_calls"] = [c.as_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        """A turn :meth:`as_dict` wrote (roles outside :data:`Role` are refused)."""
        role = d.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"not a stored turn's role: {role!r}")
        return cls(role, str(d.get("content") or ""),
                   tool_calls=tuple(ToolCall.from_dict(c) for c in d.get("tool_calls") or ()),
                   tool_call_id=d.get("tool_call_id"), name=d.get("name"))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON schema of an object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``mode`` "none", "auto" or "required"; or "function": call the tool ``name``."""

    mode: Literal["none", "auto", "required", "function"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``json_object`` asks for any valid JSON; ``json_schema`` for JSON matching ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None  # the client's name for the schema (relayed upstream)
    strict: bool | None = None  # the client's strict flag (relayed upstream)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request, independent of any wire format."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    # None: not given; a local tier then uses its model's recommended sampling
    # (:mod:`rung.sampling`), an upstream tier its server's default.
    temperature: float | None = None
    top_p: float | None = None
    top_k: int = 0  # 0: off (not an OpenAI field: set from a model's recommendation)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    response_format: ResponseFormat = field(default_factory=ResponseFormat)
    # The caller wants pieces as they come; an HTTP backend may use it to pick its
    # upstream mode. The answer's content does not depend on it.
    stream: bool = False
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None  # None: not given (the model's default)
    parallel_tool_calls: bool | None = None
    # OpenAI's reasoning_effort: each tier maps it to a test-time-compute strategy
    # (rung.ttc); None: not asked.
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None

    def modalities(self) -> frozenset[Modality]:
        """What the turns carry besides text (a tier must take all of it)."""
        out: frozenset[Modality] = frozenset()
        for m in self.messages:
            if m.parts:
                out |= m.modalities
        return out


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # Prompt tokens served from a kept prefix instead of evaluated (a local tier's KV, an
    # upstream's prompt cache): OpenAI's ``prompt_tokens_details.cached_tokens``.
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Sampling:
    """The sampling a tier applied to a request, and where it came from: ``request``
    (the client set temperature or top_p), ``model`` (the model's recommendation: its
    GGUF metadata, its catalogue entry or the tier's config) or ``default`` (OpenAI's:
    temperature 1, top_p 1)."""

    temperature: float
    top_p: float
    top_k: int = 0
    source: Literal["request", "model", "default"] = "default"

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sampling:
        source = d.get("source")
        return cls(temperature=float(d.get("temperature", 1.0)),
                   top_p=float(d.get("top_p", 1.0)), top_k=int(d.get("top_k") or 0),
                   source=source if source in ("request", "model") else "default")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of an answer. The last chunk of a stream carries ``finish_reason`` and
    ``usage``; any chunk may carry text and the logprobs of the tokens it came from, and
    pieces of tool calls."""

    text: str = ""
    logprobs: tuple[TokenLogprob, ...] = ()
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    # On the last chunk of a local backend: how long the request waited for a free model
    # instance before generation started (a stage latency in traces).
    queue_ms: float | None = None
    # On the last chunk of a local backend: seconds of model compute spent on this
    # request (without queueing; a batched step's time is shared among its sequences).
    compute_s: float | None = None
    # On the last chunk of a local backend: the sampling it applied.
    sampling: Sampling | None = None


@dataclass
class Answer:
    """One tier's whole answer, buffered (the one mutable record: chunks are appended
    as they arrive)."""

    tier: str
    chunks: list[Chunk] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def logprobs(self) -> list[TokenLogprob]:
        return [lp for c in self.chunks for lp in c.logprobs]

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return assemble_tool_calls(d for c in self.chunks for d in c.tool_calls)

    @property
    def usage(self) -> Usage | None:
        for c in reversed(self.chunks):
            if c.usage is not None:
                return c.usage
        return None

    @property
    def queue_ms(self) -> float | None:
        return next((c.queue_ms for c in reversed(self.chunks) if c.queue_ms is not None),
                    None)

    @property
    def compute_s(self) -> float | None:
        """Model compute the backend attributed to this answer (local tiers), if any."""
        return next((c.compute_s for c in reversed(self.chunks) if c.compute_s is not None),
                    None)

    @property
    def sampling(self) -> Sampling | None:
        return next((c.sampling for c in reversed(self.chunks) if c.sampling is not None),
                    None)

    @property
    def finish_reason(self) -> str | None:
        for c in reversed(self.chunks):
            if c.finish_reason is not None:
                return c.finish_reason
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verifier's view of one answer. ``score`` in [0, 1]: higher = more likely wrong."""

    name: str
    score: float
    accept: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "accept": self.accept,
                "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        score = d.get("score")
        return cls(name=str(d.get("name", "?")),
                   score=float(score) if isinstance(score, int | float) else 0.0,
                   accept=bool(d.get("accept")), detail=str(d.get("detail", "")))


class Outcome(StrEnum):
    """How one tier's turn ended. The values are what stored traces and metric labels
    say; they are fixed here, not derived from exception class names, so renaming a
    class changes neither."""

    PENDING = "pending"  # never finished (the client left, or the request was cancelled)
    ANSWERED = "answered"
    REJECTED = "rejected"  # its verifiers rejected the answer: escalated
    FAILED = "BackendError"
    TIMEOUT = "BackendTimeout"
    UNAVAILABLE = "BackendUnavailable"
    UPSTREAM_ERROR = "UpstreamError"
    OVERLOADED = "Overloaded"

    @property
    def moved_on(self) -> bool:
        """The request went past this tier (rejected, or the tier failed)."""
        return self not in (Outcome.ANSWERED, Outcome.PENDING)

    @classmethod
    def parse(cls, value: object) -> Outcome:
        """A stored outcome; one this version does not know reads as FAILED."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.FAILED


def _round(x: float | None, digits: int) -> float | None:
    return round(x, digits) if x is not None else None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One tier's turn at a request."""

    tier: str
    outcome: Outcome
    start: float  # unix seconds
    ms: float | None = None  # the whole turn: generation and verification
    generate_ms: float | None = None
    verify_ms: float | None = None
    queue_ms: float | None = None
    verdicts: tuple[Verdict, ...] = ()
    usage: Usage | None = None
    compute_s: float | None = None  # local model compute of the tier's own answer
    cost: float = 0.0  # what the tier's own answer cost (verifiers' calls: on the route)
    why: str | None = None  # why its answer was rejected
    answer: str | None = None  # a rejected answer's text (traces only)
    verified: bool = False  # its verifiers ran (an empty ``verdicts`` may still be that)
    sampling: Sampling | None = None  # what a local tier sampled with
    # The test-time-compute strategy it ran for reasoning_effort, and what it drew
    # (rung.ttc); None when the request asked for none.
    strategy: dict[str, Any] | None = None

    def as_dict(self, *, answers: bool = True) -> dict[str, Any]:
        """The stored JSON shape: keys only for what is known."""
        d: dict[str, Any] = {"tier": self.tier, "outcome": self.outcome.value,
                             "start": self.start}
        if self.ms is not None:
            d["ms"] = round(self.ms, 3)
        if self.generate_ms is not None:
            d["generate_ms"] = round(self.generate_ms, 3)
        if self.verify_ms is not None:
            d["verify_ms"] = round(self.verify_ms, 3)
        if self.verified:
            d["verdicts"] = [v.as_dict() for v in self.verdicts]
        if self.usage is not None:
            d["usage"] = [self.usage.prompt_tokens, self.usage.completion_tokens]
        if self.queue_ms is not None:
            d["queue_ms"] = self.queue_ms
        if self.compute_s is not None:
            d["compute_s"] = round(self.compute_s, 6)
        if self.cost:
            d["cost"] = self.cost
        if self.sampling is not None:
            d["sampling"] = self.sampling.as_dict()
        if self.strategy is not None:
            d["strategy"] = self.strategy
        if self.why is not None:
            d["why"] = self.why
        if answers and self.answer is not None:
            d["answer"] = self.answer
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        usage = d.get("usage")
        verdicts = d.get("verdicts")
        return cls(
            tier=str(d.get("tier") or "?"), outcome=Outcome.parse(d.get("outcome")),
            start=float(d.get("start") or 0.0), ms=d.get("ms"),
            generate_ms=d.get("generate_ms"), verify_ms=d.get("verify_ms"),
            queue_ms=d.get("queue_ms"),
            verdicts=tuple(Verdict.from_dict(v) for v in verdicts or () if isinstance(v, dict)),
            usage=Usage(int(usage[0]), int(usage[1])) if usage else None,
            compute_s=d.get("compute_s"), cost=float(d.get("cost") or 0.0), why=d.get("why"),
            answer=d.get("answer"), verified=verdicts is not None,
            sampling=Sampling.from_dict(d["sampling"]) if isinstance(d.get("sampling"), dict)
            else None,
            strategy=d["strategy"] if isinstance(d.get("strategy"), dict) else None)


@dataclass(frozen=True, slots=True)
class Judged:
    """A sampled judge's verdict on an answered trace (``rung.drift.judging``)."""

    verdict: Verdict
    tier: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.verdict.as_dict(), "tier": self.tier}


@dataclass(frozen=True, slots=True)
class Route:
    """Who answered a request and why: the routing decision and every tier's turn."""

    requested: str
    tier: str | None = None
    reason: str = ""
    score: float | None = None
    router_ms: float = 0.0
    start: int = 0
    escalations: int = 0
    cost: float = 0.0
    # Model compute the request spent on local tiers, every attempt and verifier included
    # (None when no local tier reported any).
    compute_s: float | None = None
    attempts: tuple[Attempt, ...] = ()
    judged: Judged | None = None
    router: str | None = None  # the scorer that routed it ("heuristic", "learned:<version>")

    @property
    def escalated(self) -> bool:
        """The request moved past at least one tier (rejected or failed there)."""
        return self.escalations > 0 or any(a.outcome.moved_on for a in self.attempts)

    def as_dict(self, *, answers: bool = True) -> dict[str, Any]:
        """For the trace (``answers``: each tier's rejected answer too) or, without them,
        for the client."""
        d: dict[str, Any] = {"tier": self.tier, "reason": self.reason, "score": self.score,
                             "router_ms": round(self.router_ms, 3), "start": self.start,
                             "escalations": self.escalations, "cost": self.cost,
                             "compute_s": _round(self.compute_s, 6),
                             "attempts": [a.as_dict(answers=answers) for a in self.attempts]}
        if self.judged is not None:
            d["judged"] = self.judged.as_dict()
        if self.router is not None:
            d["router"] = self.router
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, requested: str = "") -> Route:
        """Read a stored route back; missing keys take their defaults."""
        judged = d.get("judged")
        score = d.get("score")
        return cls(
            requested=requested, tier=d.get("tier"), reason=str(d.get("reason") or ""),
            score=float(score) if isinstance(score, int | float) else None,
            router_ms=float(d.get("router_ms") or 0.0), start=int(d.get("start") or 0),
            escalations=int(d.get("escalations") or 0), cost=float(d.get("cost") or 0.0),
            compute_s=d.get("compute_s"),
            attempts=tuple(Attempt.from_dict(a) for a in d.get("attempts") or ()
                           if isinstance(a, dict)),
            judged=(Judged(Verdict.from_dict(judged), str(judged.get("tier", "?")))
                    if isinstance(judged, dict) else None),
            router=d.get("router") if isinstance(d.get("router"), str) else None)

    def header(self) -> str:
        """The ``x-rung-route`` header: reason, score, then each tier's outcome."""
        parts = [f"reason={self.reason}"]
        if self.score is not None:
            parts.append(f"score={self.score:.3f}")
        for a in self.attempts:
            verdicts = ",".join(f"{v.name}={v.score:.2f}{'+' if v.accept else '-'}"
                                for v in a.verdicts)
            parts.append(f"{a.tier}:{a.outcome.value}" + (f"({verdicts})" if verdicts else ""))
        return ";".join(parts)
