"""A prompt version, a label's target and rendering: pure records and functions, no I/O.

A version's ``messages`` are chat turns (``{"role", "content"}``) whose contents may hold
``{{variable}}`` placeholders; ``variables`` holds defaults. Rendering fills each
placeholder from the request's variables, then the defaults; a placeholder with neither,
or a request variable the version never uses, is the caller's mistake (a 400 naming it).
A label's :class:`Target` is one version, or several with weights: the A/B split, which
picks a version by a hash of who is asking, so that one user stays on one version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rung.errors import ConfigError, RequestError

PRODUCTION = "production"  # what a bare prompt name means
LATEST = "latest"  # always the highest version; never stored, never moved
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ROLES = ("system", "developer", "user", "assistant")
#: What a version's ``config`` may set; a request's own field wins over it.
CONFIG_KEYS = ("temperature", "top_p", "max_tokens", "response_format", "tools", "tier",
               "thresholds")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"prompt name {name!r} is not allowed: letters, digits and "
                          "_ . -, starting with a letter or digit (at most 128)")
    return name


def check_label(label: str) -> str:
    if label == LATEST:
        raise ConfigError("'latest' is automatic (the highest version): it cannot be moved")
    if not _LABEL.fullmatch(label):
        raise ConfigError(f"label {label!r} is not allowed: a letter, then letters, digits "
                          "and _ . - (at most 64)")
    return label


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One immutable version of a prompt."""

    name: str
    version: int
    messages: tuple[dict[str, str], ...]
    variables: dict[str, str] = field(default_factory=dict)  # defaults
    config: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # the commit message
    author: str | None = None  # who pushed it (a key id, or the CLI's user)
    created: float = 0.0

    @property
    def uses(self) -> list[str]:
        """The variables its messages use, in order of first use."""
        seen: dict[str, None] = {}
        for m in self.messages:
            for name in placeholders(m["content"]):
                seen.setdefault(name, None)
        return list(seen)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "messages": list(self.messages),
                "variables": self.variables, "config": self.config, "message": self.message,
                "author": self.author, "created": self.created}


def new_version(name: str, data: Mapping[str, Any], *, message: str = "",
                author: str | None = None) -> PromptVersion:
    """A version to push, from a TOML file's (or an admin request's) ``messages``,
    ``variables`` and ``config``; ConfigError says what is wrong."""
    check_name(name)
    unknown = set(data) - {"messages", "variables", "config", "message"}
    if unknown:
        raise ConfigError(f"unknown keys in the prompt: {', '.join(sorted(unknown))} "
                          "(messages, variables, config)")
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("a prompt needs `messages`: a list of {role, content}")
    messages: list[dict[str, str]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or set(m) != {"role", "content"} \
                or m["role"] not in _ROLES or not isinstance(m["content"], str):
            raise ConfigError(f"messages[{i}] must be {{role, content}} with role one of "
                              f"{', '.join(_ROLES)} and content a string")
        messages.append({"role": str(m["role"]), "content": m["content"]})
    variables = data.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise ConfigError("`variables` must be a table of defaults")
    config = dict(data.get("config") or {})
    bad = set(config) - set(CONFIG_KEYS)
    if bad:
        raise ConfigError(f"unknown keys in [config]: {', '.join(sorted(bad))} "
                          f"(allowed: {', '.join(CONFIG_KEYS)})")
    v = PromptVersion(name=name, version=0, messages=tuple(messages),
                      variables={str(k): _value(str(k), x) for k, x in variables.items()},
                      config=config, message=message or str(data.get("message") or ""),
                      author=author)
    unused = sorted(set(v.variables) - set(v.uses))
    if unused:
        raise ConfigError(f"default for a variable no message uses: {', '.join(unused)}")
    return v


def _value(name: str, x: object) -> str:
    if isinstance(x, bool) or not isinstance(x, str | int | float):
        raise ConfigError(f"variable {name!r} must be a string or a number")
    return str(x)


def render(v: PromptVersion, given: Mapping[str, Any]) -> list[dict[str, str]]:
    """The version's messages with every placeholder filled; RequestError (400) naming a
    variable that is missing or that the version does not use."""
    uses = v.uses
    for name in given:
        if name not in uses:
            raise RequestError(f"Prompt '{v.name}' version {v.version} has no variable "
                               f"'{name}' (it uses: {', '.join(uses) or 'none'}).",
                               param=f"rung.variables.{name}", code="unknown_variable")
    values: dict[str, str] = dict(v.variables)
    for name, x in given.items():
        if isinstance(x, bool) or not isinstance(x, str | int | float):
            raise RequestError(f"Variable '{name}' must be a string or a number.",
                               param=f"rung.variables.{name}", code="invalid_value")
        values[name] = str(x)
    for name in uses:
        if name not in values:
            raise RequestError(f"Prompt '{v.name}' version {v.version} needs the variable "
                               f"'{name}'.", param=f"rung.variables.{name}",
                               code="missing_variable")

    def fill(m: re.Match[str]) -> str:
        return values[m.group(1)]
    return [{"role": m["role"], "content": _PLACEHOLDER.sub(fill, m["content"])}
            for m in v.messages]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a label points: ``((version, weight), ...)``; one version has weight 1."""

    split: tuple[tuple[int, float], ...]

    @classmethod
    def single(cls, version: int) -> Target:
        return cls(((version, 1.0),))

    @classmethod
    def parse(cls, text: str) -> Target:
        """``3``, or ``3=0.9,4=0.1`` (weights are relative: ``3=9,4=1`` is the same)."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            if len(parts) == 1 and "=" not in parts[0]:
                return cls.single(int(parts[0]))
            split = [(int(v), float(w)) for v, w in (p.split("=", 1) for p in parts)]
        except ValueError as exc:
            raise ConfigError(f"not a version or a split: {text!r} (e.g. 3, or "
                              "3=0.9,4=0.1)") from exc
        return cls.of(split)

    @classmethod
    def of(cls, split: list[tuple[int, float]]) -> Target:
        if not split:
            raise ConfigError("a split needs at least one version")
        if any(w < 0 for _, w in split) or sum(w for _, w in split) <= 0:
            raise ConfigError("split weights must be non-negative, and not all zero")
        if len({v for v, _ in split}) != len(split):
            raise ConfigError("a version appears twice in the split")
        if any(v < 1 for v, _ in split):
            raise ConfigError("versions start at 1")
        total = sum(w for _, w in split)
        return cls(tuple((v, w / total) for v, w in split))

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(v for v, _ in self.split)

    def pick(self, who: str | None, *, salt: str, draw: float | None = None) -> int:
        """The version for one request. ``who`` (a key id or the client's user id) keeps
        a caller on one version: the same hash of ``salt`` (the prompt and label) and
        ``who`` lands on the same side of the split every time. Without ``who``, ``draw``
        (a uniform number in [0, 1)) decides."""
        if len(self.split) == 1:
            return self.split[0][0]
        if who is not None:
            h = hashlib.sha256(f"{salt}\x00{who}".encode()).digest()
            u = int.from_bytes(h[:8], "big") / 2**64
        else:
            u = draw if draw is not None else 0.0
        acc = 0.0
        for v, w in self.split:
            acc += w
            if u < acc:
                return v
        return self.split[-1][0]

    def to_json(self) -> str:
        return json.dumps([[v, w] for v, w in self.split])

    @classmethod
    def from_json(cls, text: str) -> Target:
        return cls(tuple((int(v), float(w)) for v, w in json.loads(text)))

    def as_dict(self) -> dict[str, float]:
        return {str(v): round(w, 6) for v, w in self.split}

    def __str__(self) -> str:
        if len(self.split) == 1:
            return str(self.split[0][0])
        return ",".join(f"{v}={w:g}" for v, w in self.split)


@dataclass(frozen=True, slots=True)
class PromptRef:
    """What a request names: ``NAME`` (production), ``NAME@LABEL`` or ``NAME@3``."""

    name: str
    label: str | None
    version: int | None

    @classmethod
    def parse(cls, text: str) -> PromptRef:
        name, _, ref = text.partition("@")
        if not _NAME.fullmatch(name) or (_ and not ref):
            raise RequestError(f"Invalid prompt reference '{text}': use NAME, NAME@LABEL or "
                               "NAME@VERSION.", param="rung.prompt", code="invalid_value")
        if not ref:
            return cls(name, PRODUCTION, None)
        if ref.isdigit():
            return cls(name, None, int(ref))
        return cls(name, ref, None)

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else self.label}"
