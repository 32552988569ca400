"""A local tier refuses tools before it touches its model (none is loaded here)."""

from __future__ import annotations

import pytest

from rung.backends.llama import LlamaBackend
from rung.config import CatalogConfig, LlamaBackendConfig
from rung.errors import RequestError
from rung.types import ChatRequest, Message, ToolCall, ToolSpec

CALL = ToolCall("c1", "get_time", "{}")
CASES = [
    ("tools", ChatRequest(messages=(Message("user", "time?"),), tools=(ToolSpec("get_time"),)),
     "tools"),
    ("tool turns", ChatRequest(messages=(
        Message("user", "time?"), Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", "noon", tool_call_id="c1"))), "messages"),
]


@pytest.mark.parametrize(("name", "req", "param"), CASES, ids=[c[0] for c in CASES])
async def test_local_tier_refuses_tools_unloaded(name: str, req: ChatRequest,
                                                 param: str) -> None:
    tier = LlamaBackend("smol", LlamaBackendConfig(), catalog=CatalogConfig())
    with pytest.raises(RequestError) as info:
        async for _ in tier.stream(req):
            pass
    assert info.value.param == param and info.value.status == 400
    assert "local tiers do not" in info.value.message
    assert not tier.ready  # refused before any model was loaded
