"""Feedback: what a user (or, later, a verifier or a shadow comparison) said about one
answer, kept beside its trace. Several may exist for one trace; each keeps its source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SHADOW = "shadow"  # a stronger tier's answer compared with the one given (routing.shadow)
SHADOW_FIRST = "shadow_first"  # the first tier's answer compared with a stronger one's
SHADOWS = (SHADOW, SHADOW_FIRST)  # the sources no user gave


@dataclass(frozen=True, slots=True)
class Feedback:
    trace_id: str  # the completion's id, which is its trace's id
    score: float  # in [0, 1]; 1 = good
    time: float  # unix seconds
    comment: str | None = None
    key_id: str | None = None  # the key that gave it (None: keys are not required)
    source: str = "user"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": self.score, "time": self.time, "source": self.source}
        if self.comment is not None:
            d["comment"] = self.comment
        if self.key_id is not None:
            d["key_id"] = self.key_id
        return d


COLUMNS = ("trace_id", "time", "score", "comment", "key_id", "source")


def to_row(fb: Feedback) -> tuple[Any, ...]:
    return tuple(getattr(fb, c) for c in COLUMNS)


def from_row(row: tuple[Any, ...]) -> Feedback:
    return Feedback(**dict(zip(COLUMNS, row, strict=True)))


def select_sql(mark: str, *, trace_id: str | None, since: float | None,
               until: float | None) -> tuple[str, list[Any]]:
    """The query for :meth:`feedback` of either store (``mark``: its placeholder)."""
    where, args = [], []
    for cond, value in (("trace_id = {m}", trace_id), ("time >= {m}", since),
                        ("time < {m}", until)):
        if value is not None:
            where.append(cond.format(m=mark))
            args.append(value)
    sql = f"SELECT {', '.join(COLUMNS)} FROM feedback"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY time", args


def insert_sql(mark: str) -> str:
    return (f"INSERT INTO feedback ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join([mark] * len(COLUMNS))})")
