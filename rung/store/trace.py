"""A trace: the unit of observability, one per accepted request, failures included."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rung.types import Message, Role, Route, ToolCall, ToolChoice, ToolSpec

_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant",
                           "tool": "tool"}


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool-call step as its trace keeps it: the names of the tools offered, the
    ``tool_choice`` and the calls returned. Stored as :meth:`as_dict` writes it (keys only
    for what is present, arguments left out when traces are redacted), read back by
    :meth:`from_dict` (``redacted`` then says that the calls' empty ``arguments`` were
    not stored rather than empty)."""

    offered: tuple[str, ...] = ()
    choice: ToolChoice | None = None
    calls: tuple[ToolCall, ...] = ()
    redacted: bool = False

    @classmethod
    def of(cls, tools: Sequence[ToolSpec], choice: ToolChoice | None) -> ToolUse:
        return cls(tuple(t.name for t in tools), choice)

    def as_dict(self, *, arguments: bool = True) -> dict[str, Any] | None:
        """The stored JSON, or None for a request that neither offered nor called a tool
        (so a trace without tools keeps the shape traces always had)."""
        d: dict[str, Any] = {}
        if self.offered:
            d["offered"] = list(self.offered)
        if self.choice is not None:
            c = self.choice
            d["choice"] = c.mode if c.name is None else {"type": "function",
                                                         "function": {"name": c.name}}
        if self.calls:
            d["calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments}
                          if arguments and not self.redacted else {"id": c.id, "name": c.name}
                          for c in self.calls]
        return d or None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ToolUse:
        """Any stored shape; None (an older trace, or no tools) reads as no tool use."""
        if not d:
            return cls()
        choice = d.get("choice")
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            parsed = ToolChoice("function", str(name)) if name else None
        else:
            parsed = ToolChoice(choice) if choice in ("none", "auto", "required") else None
        calls = [c for c in d.get("calls") or () if isinstance(c, dict)]
        return cls(offered=tuple(str(n) for n in d.get("offered") or ()), choice=parsed,
                   calls=tuple(ToolCall(str(c.get("id", "")), str(c.get("name", "")),
                                        str(c.get("arguments", ""))) for c in calls),
                   redacted=any("arguments" not in c for c in calls))

    @property
    def called(self) -> tuple[str, ...]:
        """The names of the tools called, in call order (a name repeats per call)."""
        return tuple(c.name for c in self.calls)


NO_TOOLS = ToolUse()  # frozen, so one instance serves every request without tools


@dataclass
class Trace:
    id: str
    time: float  # unix seconds, when the request was accepted
    model: str  # what the client asked for
    status: str = "ok"  # "ok", or the error code
    tier: str | None = None  # who answered
    key_id: str | None = None
    escalated: bool = False
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cost: float = 0.0
    score: float | None = None
    prompt_hash: str = ""
    messages: list[dict[str, str]] | None = None  # None when redacted
    response: str | None = None
    route: dict[str, Any] = field(default_factory=dict)  # Route.as_dict(); see routing
    error: str | None = None
    tools: dict[str, Any] | None = None  # ToolUse.as_dict(); None without tools; see tool_use

    def as_dict(self) -> dict[str, Any]:
        """Every field; ``tools`` only when the request offered or called tools."""
        d = asdict(self)
        if d["tools"] is None:
            del d["tools"]
        return d

    @property
    def endpoint(self) -> str:
        """The API the request came to: ``"chat"``, or what its route names
        (``"embeddings"``), so that what reads chat traces can leave the others out."""
        return str(self.route.get("endpoint") or "chat")

    @property
    def prompt(self) -> dict[str, Any] | None:
        """The registered prompt the request used, as its route records it (``name``,
        ``version``, ``label``; rung.prompts), or None."""
        p = self.route.get("prompt")
        return p if isinstance(p, dict) else None

    @property
    def routing(self) -> Route:
        """The stored route, read back as the typed record (any stored shape reads)."""
        return Route.from_dict(self.route, requested=self.model)

    @property
    def tool_use(self) -> ToolUse:
        """The stored tool use, read back as the typed record."""
        return ToolUse.from_dict(self.tools)

    @property
    def conversation(self) -> tuple[Message, ...]:
        """The stored turns as messages (role and content; none when redacted), for
        asking a tier about this request again (a judge, a shadow, a learned router)."""
        return tuple(Message(_ROLES[m["role"]], str(m.get("content") or ""))
                     for m in self.messages or () if m.get("role") in _ROLES)


def prompt_hash(messages: tuple[Message, ...]) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(m.role.encode())
        h.update(b"\x00")
        h.update(m.content.encode())
        h.update(b"\x01")
    return h.hexdigest()[:32]
