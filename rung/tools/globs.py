"""Tool names against allow/deny globs: the one rule the gateway's ``[tools]`` lists, an
API key's own lists and the high-stakes globs all follow (case-sensitive, like tool names
on the wire)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def matches(name: str, globs: Iterable[str]) -> bool:
    return any(fnmatchcase(name, g) for g in globs)


def allowed(name: str, allow: Iterable[str] | None, deny: Iterable[str]) -> bool:
    """Allowed by ``allow`` (None: no allow list) and not denied: a deny wins."""
    return (allow is None or matches(name, allow)) and not matches(name, deny)
