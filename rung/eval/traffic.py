"""Your own traffic as a benchmark: the JSON lines of ``rung traces export`` (or any
lines with ``messages``, OpenAI chat turns), answered by each model and scored by a
judge tier, since traffic has no reference check (:mod:`rung.eval.judging`).

Only chat requests in plain text are kept: embeddings, tool traffic and turns whose
content is not a string are left out, as are failed requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.errors import ConfigError
from rung.eval.datasets import Item
from rung.types import ChatRequest, Message

ROLES = ("system", "user", "assistant")


def load(path: str) -> tuple[list[Item], str]:
    """The usable requests of a traces export and the file's sha256."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    items = []
    for i, line in enumerate(raw.decode().splitlines()):
        if not line.strip():
            continue
        row: dict[str, Any] = json.loads(line)
        msgs = row.get("messages")
        if (not isinstance(msgs, list) or not msgs or row.get("tools") or row.get("error")
                or (row.get("route") or {}).get("endpoint", "chat") != "chat"
                or not all(isinstance(m, dict) and m.get("role") in ROLES
                           and isinstance(m.get("content"), str) for m in msgs)):
            continue
        question = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        items.append(Item(id=f"traffic/{row.get('id', i)}", dataset="traffic",
                          prompt=question, question=question,
                          reference=str(row.get("response") or ""),
                          extra={"messages": [(m["role"], m["content"]) for m in msgs]}))
    if not items:
        raise ConfigError(f"{path}: no chat requests in plain text (JSON lines with "
                          "'messages', as `rung traces export` writes)")
    return items, hashlib.sha256(raw).hexdigest()


def request_for(item: Item, *, seed: int, max_tokens: int) -> ChatRequest:
    """The logged conversation, answered greedily."""
    return ChatRequest(messages=tuple(Message(r, c) for r, c in item.extra["messages"]),
                       max_tokens=max_tokens, temperature=0.0, seed=seed)


async def judge(config: Any, tier: str, answers: Sequence[dict[str, Any]]) -> list[bool]:
    """Whether ``tier`` of ``config`` judges each answer correct (P(yes) >= 0.5; an
    abstention counts as wrong)."""
    from rung.eval.judging import judge_rows
    from rung.gateway import Gateway

    if config.tier(tier) is None:
        raise ConfigError(f"no tier {tier!r} in the config to judge with")
    gateway = Gateway(config)
    await gateway.backends[tier].start()
    try:
        p_yes = await judge_rows(gateway.cascade, answers, tier=tier, rubric=None)
    finally:
        await gateway.aclose()
    return [p is not None and p >= 0.5 for p in p_yes]
