"""A real rung server for agent frameworks to talk to, and the frameworks' clients built
for one tier of it. The tier is a parameter so that the same client code can be pointed
at a local tier; the tests here use an upstream tier whose answers are scripted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rung.devtools.upstream import UpstreamBehaviour
from rung.types import ToolCall
from tests.conftest import config_of, rung_server, upstream_server, upstream_tier

TIMEOUT_S = 10.0  # every client call; a hung gateway fails the test instead of stalling it


@dataclass(frozen=True)
class Gateway:
    """rung's ``/v1`` base URL, the tier to ask for, and its upstream's script and record."""

    base_url: str
    tier: str
    upstream: UpstreamBehaviour


@contextmanager
def gateway(calls: list[ToolCall], *, reply: str) -> Iterator[Gateway]:
    """rung over one upstream tier "up" that answers a request offering tools with
    ``calls`` (a request whose last turn is a tool result with ``reply``) and records
    every request it receives."""
    b = UpstreamBehaviour(reply=reply, tool_calls=calls, bodies=[])
    with upstream_server(b) as up, \
            rung_server(config_of(tiers=[upstream_tier("up", up.url)])) as server:
        yield Gateway(f"{server.url}/v1", "up", b)
