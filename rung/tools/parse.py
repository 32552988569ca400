"""Reading tool calls back out of what a local model writes, as it streams.

Models write calls in more than one form, and the parser accepts the forms they really
produce (measured on Qwen2.5-Coder given tools through its own template: it often
answered with a fenced JSON object instead of the tags its template asks for):

- ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen's and Hermes' form;
  several blocks for parallel calls; the closing tag may be missing at the very end);
- a fenced block, ```` ```json {...} ``` ````, anywhere in the answer;
- the whole answer a bare JSON object, or a list of them (what a grammar-forced call
  writes).

Inside any of them a call is an object with ``name`` and ``arguments`` (or
``parameters``), the arguments an object or a JSON string of one; a list of such objects
is several calls. Text that is none of these is the answer's content and streams through
at once; only text that may still turn out to be a call (a marker begun, a fence open, an
answer that starts with ``{``) is held back until it is decided.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from rung.types import ToolCall

_TAG_OPEN, _TAG_CLOSE = "<tool_call>", "</tool_call>"
_FENCE = "```"
_MARKERS = ((_TAG_OPEN, _TAG_CLOSE), (_FENCE, _FENCE))


# A call begun: the tag, or a fenced or bare JSON object whose first key is "name".
_CALL_OBJECT = r'[\[{]\s*\{?\s*"name"'  # an object, or a list of them, opening on "name"
_CALL_BEGUN = re.compile(rf"<tool_call>|```(?:json)?\s*{_CALL_OBJECT}|^\s*{_CALL_OBJECT}")


def begins_call(text: str) -> bool:
    """Whether ``text`` begins writing a call in one of the forms above (whether or not it
    finished it): what an answer cut off mid-call looks like once its JSON no longer
    parses."""
    return _CALL_BEGUN.search(text) is not None


def new_call_id() -> str:
    """An id in OpenAI's style (``call_`` and 24 hex digits)."""
    return "call_" + secrets.token_hex(12)


def calls_in(text: str) -> list[ToolCall] | None:
    """The calls a JSON text (optionally a fenced block's body) holds, or None when it
    is not a call (not JSON, or an object without a string ``name``). Several JSON values
    one after another (objects, or lists of them) are several calls."""
    body = text.strip()
    if body[:4].lower() == "json":  # a fence's language tag
        body = body[4:].lstrip()
    items: list[Any] = []
    decoder, at = json.JSONDecoder(), 0
    try:
        while at < len(body):
            value, at = decoder.raw_decode(body, at)
            items.extend(value if isinstance(value, list) else [value])
            while at < len(body) and body[at].isspace():
                at += 1
    except ValueError:
        return None
    calls = [c for c in (_call_of(v) for v in items) if c is not None]
    return calls if calls and len(calls) == len(items) else None


def _call_of(value: Any) -> ToolCall | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):  # the arguments' JSON text, as OpenAI's wire writes it
        try:
            args = json.loads(args)
        except ValueError:
            return ToolCall(new_call_id(), value["name"], args)
    if args is None:
        args = {}
    return ToolCall(new_call_id(), value["name"], json.dumps(args, ensure_ascii=False))


@dataclass
class CallReader:
    """Fed the generated text piece by piece; gives back the content to stream now and
    the calls completed so far. ``finish()`` decides whatever is still held."""

    _held: str = ""
    _close: str | None = None  # inside a block: the marker that ends it
    _bare: bool = False  # the answer began as JSON: held whole until the end
    _started: bool = False  # some non-space text has been seen
    _opened: str = ""  # the marker that began the block being read
    calls: list[ToolCall] = field(default_factory=list)

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._held += text
        out: list[str] = []
        found: list[ToolCall] = []
        while True:
            if not self._started:
                lead = self._held.lstrip()
                if not lead:
                    return "", found
                self._started = True
                if lead[0] in "{[":
                    self._bare = True
            if self._bare:
                return "".join(out), found
            if self._close is not None:
                end = self._held.find(self._close)
                if end < 0:
                    return "".join(out), found
                block, self._held = self._held[:end], self._held[end + len(self._close):]
                opened, self._close = self._opened, None
                calls = calls_in(block)
                if calls is None:  # not a call after all: it was content
                    out.append(opened + block + (_TAG_CLOSE if opened == _TAG_OPEN else _FENCE))
                else:
                    found.extend(calls)
                    self.calls.extend(calls)
                continue
            at, marker = _first_marker(self._held)
            if marker is None:
                keep = _partial_marker(self._held)
                cut = len(self._held) - keep
                out.append(self._held[:cut])
                self._held = self._held[cut:]
                if self.calls:  # between or after calls, bare whitespace is no content
                    out = [s for s in out if s.strip()]
                return "".join(out), found
            if self._held[:at].strip():  # spaces just before a block are no content
                out.append(self._held[:at])
            self._opened, self._close = marker
            self._held = self._held[at + len(marker[0]):]

    def finish(self) -> tuple[str, list[ToolCall]]:
        """The rest: a bare JSON answer or a block cut off by the end of generation is a
        call if it parses as one, else content."""
        held, self._held = self._held, ""
        if self._bare or self._close is not None:
            calls = calls_in(held.removesuffix(_FENCE))
            if calls is not None:
                self.calls.extend(calls)
                return "", calls
            if self._close is not None:
                held = self._opened + held
        self._close, self._bare = None, False
        if self.calls and not held.strip():
            return "", []
        return held, []


def _first_marker(text: str) -> tuple[int, tuple[str, str] | None]:
    best: tuple[int, tuple[str, str] | None] = (len(text), None)
    for m in _MARKERS:
        at = text.find(m[0])
        if 0 <= at < best[0]:
            best = (at, m)
    return best


def _partial_marker(text: str) -> int:
    """How many characters at the end of ``text`` could begin a marker."""
    window = text[-(len(_TAG_OPEN) - 1):]
    if "<" not in window and "`" not in window:  # the usual case: prose ends here
        return 0
    for n in range(min(len(text), len(_TAG_OPEN) - 1), 0, -1):
        tail = text[-n:]
        if any(m[0].startswith(tail) for m in _MARKERS):
            return n
    return 0
