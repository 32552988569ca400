"""Per-text results kept while one job runs, and only then.

``rung learn`` tokenises and measures the same prompts for every fold's fit and scores
(a cross-fit fits and scores six routers on one set of prompts). Inside
:func:`remembered`, :func:`cached` keeps each text's result of a pure function; outside
it (or in another thread) nothing is kept, so a server's memory never grows with the
prompts it routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# per context: a server thread routing while rung learn runs in-process sees none of it
_kept: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar("rung_memo", default=None)


@contextmanager
def remembered() -> Iterator[None]:
    """Keep :func:`cached` results until the block ends (nested blocks share the outer
    one's)."""
    outer = _kept.get()
    token = _kept.set({} if outer is None else outer)
    try:
        yield
    finally:
        _kept.reset(token)


def cached(kind: str, text: str, compute: Callable[[str], T]) -> T:
    """``compute(text)``, kept under (``kind``, ``text``) inside :func:`remembered`. The
    value is shared, so callers must not change it."""
    kept = _kept.get()
    if kept is None:
        return compute(text)
    key = (kind, text)
    if key in kept:
        return kept[key]  # type: ignore[no-any-return]
    value = kept[key] = compute(text)
    return value
