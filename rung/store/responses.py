"""Responses kept for ``previous_response_id`` (OpenAI's ``store``): each keeps the
response object it returned and the turns a follow-up continues from (every earlier
turn, its input and its output, without its ``instructions``, which OpenAI does not
carry over either). Kept in the trace store's database, beside the trace of the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from rung.types import Message


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str  # the response's id, which is its trace's id
    time: float
    key_id: str | None  # the key that made it; only it (or an admin key) may read it
    body: dict[str, Any]  # the response object as returned
    turns: tuple[Message, ...]  # the conversation a follow-up continues


COLUMNS = ("id", "time", "key_id", "body", "turns")


def to_row(r: StoredResponse) -> tuple[Any, ...]:
    return (r.id, r.time, r.key_id, orjson.dumps(r.body).decode(),
            orjson.dumps([m.as_dict() for m in r.turns]).decode())


def from_row(row: tuple[Any, ...]) -> StoredResponse:
    return StoredResponse(id=str(row[0]), time=float(row[1]), key_id=row[2],
                          body=orjson.loads(row[3]),
                          turns=tuple(Message.from_dict(m) for m in orjson.loads(row[4])))


def insert_sql(mark: str) -> str:
    return (f"INSERT INTO responses ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join([mark] * len(COLUMNS))})")


def select_sql(mark: str) -> str:
    return f"SELECT {', '.join(COLUMNS)} FROM responses WHERE id = {mark}"


def delete_sql(mark: str) -> str:
    return f"DELETE FROM responses WHERE id = {mark}"
