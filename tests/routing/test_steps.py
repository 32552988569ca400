"""Agent steps routed as steps: what the scorers read of a tool conversation, the memory
that makes a conversation's later steps start where it escalated to, and both through a
real rung server over two real upstream tiers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rung.devtools.upstream import UpstreamBehaviour
from rung.routing.policy import StartDecision, sticky_start
from rung.routing.scorers import MAX_PROMPT_CHARS, HeuristicScorer, LearnedScorer
from rung.routing.steps import conversation_key, prompt_text, read_step
from rung.routing.sticky import StickyStarts
from rung.store.sqlite import SqliteStore
from rung.types import ChatRequest, Message, ToolCall, ToolSpec
from tests.conftest import (
    SHARED_DATA,
    LiveServer,
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)

SYSTEM = Message("system", "You are a travel agent. Use the tools.")
TASK = Message("user", "What is the weather in Paris, and should I pack an umbrella?")
WEATHER = ToolSpec("get_weather", None, {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]})
TIME = ToolSpec("get_time", None, {"type": "object", "properties": {}})
CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
BIG_JSON = '{"forecast": [' + ",".join(['{"t": 12, "rain": 0.8}'] * 200_000) + "]}"


def step_after(result: str, *, calls: int = 1) -> tuple[Message, ...]:
    """The conversation after ``calls`` tool rounds, the last answered with ``result``."""
    rounds: list[Message] = []
    for i in range(calls):
        call = ToolCall(f"call_{i}", "get_weather", '{"city": "Paris"}')
        rounds += [Message("assistant", "", tool_calls=(call,)),
                   Message("tool", result if i == calls - 1 else '{"t": 12}',
                           tool_call_id=call.id)]
    return (SYSTEM, TASK, *rounds)


@pytest.mark.parametrize(("messages", "tools", "text", "turn", "step", "after_tool",
                          "dialogue", "continues"), [
    ((TASK,), (), TASK.content, 1, 0, False, 1, False),
    ((SYSTEM, TASK), (WEATHER, TIME), TASK.content, 1, 0, False, 2, False),
    # after a tool result: the user's task is scored, not the tool's JSON
    (step_after('{"t": 12, "rain": 0.8}'), (WEATHER,), TASK.content, 1, 1, True, 2, True),
    (step_after('{"t": 12}', calls=3), (WEATHER,), TASK.content, 1, 3, True, 2, True),
    # the model answered after the tools; the user asks again: a new turn, step 0
    ((*step_after("{}"), Message("assistant", "Rain: take one."),
      Message("user", "And in Rome?")), (WEATHER,), "And in Rome?", 2, 0, False, 4, True),
    # no user message: the system prompt states the task, not the tool output
    ((SYSTEM, Message("assistant", "", tool_calls=(CALL,)),
      Message("tool", "{}", tool_call_id="call_1")), (WEATHER,), SYSTEM.content, 0, 1,
     True, 1, True),
    ((), (), "", 0, 0, False, 0, False),
])
def test_read_step(messages: tuple[Message, ...], tools: tuple[ToolSpec, ...], text: str,
                   turn: int, step: int, after_tool: bool, dialogue: int,
                   continues: bool) -> None:
    s = read_step(ChatRequest(messages=messages, tools=tools))
    assert (s.text, s.tools, s.turn, s.step, s.after_tool, s.dialogue, s.continues) == \
        (text, len(tools), turn, step, after_tool, dialogue, continues)


def test_the_scored_text_is_bounded() -> None:
    """A megabyte task is cut at MAX_PROMPT_CHARS; a megabyte tool result is not read."""
    huge = Message("user", "x " * 1_000_000)
    assert len(read_step(ChatRequest(messages=(huge,))).text) == MAX_PROMPT_CHARS
    s = read_step(ChatRequest(messages=step_after(BIG_JSON), tools=(WEATHER,)))
    assert s.text == TASK.content
    assert prompt_text(ChatRequest(messages=(huge,))) == huge.content  # uncut for verifiers


def test_heuristic_scores_each_step_of_a_task_as_its_task() -> None:
    """The tool's output, however large, does not move the score; tools offered do; a
    plain chat scores as the dialogue's length always made it."""
    h = HeuristicScorer()
    first = h.score(ChatRequest(messages=(SYSTEM, TASK), tools=(WEATHER,)))
    for messages in (step_after('{"t": 12}'), step_after(BIG_JSON), step_after("{}", calls=5)):
        t0 = time.perf_counter()
        assert h.score(ChatRequest(messages=messages, tools=(WEATHER,))) == first
        assert time.perf_counter() - t0 < 0.5
    bare = h.score(ChatRequest(messages=(SYSTEM, TASK)))
    many = h.score(ChatRequest(messages=(SYSTEM, TASK), tools=tuple(
        ToolSpec(f"tool_{i}") for i in range(20))))
    assert bare < first < many
    chat = (SYSTEM, TASK, Message("assistant", "Sunny."), Message("user", "Sure?"))
    longer = h.score(ChatRequest(messages=chat))
    assert longer > h.score(ChatRequest(messages=(SYSTEM, Message("user", "Sure?"))))
    with_tools = (SYSTEM, TASK, Message("assistant", "", tool_calls=(CALL,)),
                  Message("tool", "{}", tool_call_id="call_1"), *chat[2:])
    assert h.score(ChatRequest(messages=with_tools)) == longer  # tool rounds are not turns


@pytest.fixture(scope="module")
def learned_router(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learned router trained on 60 GSM8K prompts (TF-IDF and structure: quick)."""
    from rung.routing.data import load_outcomes
    from rung.routing.learned import train_router

    rows = load_outcomes(SHARED_DATA / "routellm", "gsm8k")[:60]
    out = tmp_path_factory.mktemp("router") / "router.npz"
    train_router(rows, inner_folds=2).save(out)
    return out


def test_learned_scorer_scores_the_users_task(learned_router: Path) -> None:
    """A router trained on prompts scores a step as it scores the task's prompt: same
    feature space, the tool output and the tools left out of it."""
    from rung.routing.learned import RouterModel

    model = RouterModel.load(learned_router)
    scorer = LearnedScorer(learned_router)
    question = "Tom has 3 boxes of 12 apples and eats 5. How many apples are left?"
    task = Message("user", question)
    expected = model.score(question)
    assert scorer.score(ChatRequest(messages=(task,))) == pytest.approx(expected)
    step = ChatRequest(messages=(SYSTEM, task, Message("assistant", "", tool_calls=(CALL,)),
                                 Message("tool", BIG_JSON, tool_call_id="call_1")),
                       tools=(WEATHER, TIME))
    assert scorer.score(step) == pytest.approx(expected)


def test_conversation_key() -> None:
    """Every step of a conversation shares the key; another system prompt, tool set,
    schema or first message makes another conversation; tool order does not."""
    key = conversation_key(ChatRequest(messages=(SYSTEM, TASK), tools=(WEATHER, TIME)))
    same = [ChatRequest(messages=step_after("{}"), tools=(WEATHER, TIME)),
            ChatRequest(messages=(*step_after("{}", calls=2), Message("assistant", "ok"),
                                  Message("user", "And Rome?")), tools=(TIME, WEATHER))]
    assert all(conversation_key(r) == key for r in same)
    other_schema = ToolSpec("get_weather", None, {"type": "object"})
    others = [ChatRequest(messages=(TASK,), tools=(WEATHER, TIME)),
              ChatRequest(messages=(SYSTEM, TASK), tools=(WEATHER,)),
              ChatRequest(messages=(SYSTEM, TASK), tools=(other_schema, TIME)),
              ChatRequest(messages=(SYSTEM, Message("user", "Rome?")), tools=(WEATHER, TIME))]
    assert len({key, *(conversation_key(r) for r in others)}) == 1 + len(others)


def test_sticky_memory_expires_since_last_use_and_stays_bounded() -> None:
    m = StickyStarts(10.0, max_keys=3)
    m.remember("a", 1, now=0.0)
    assert m.get("a", now=9.0) == 1  # a use: it lives until 19
    assert m.get("a", now=18.0) == 1
    assert m.get("a", now=28.5) is None and len(m) == 0  # 10.5 s unused: gone
    m.remember("a", 2, now=30.0)
    m.remember("a", 1, now=31.0)  # a lower tier does not lower where it starts
    assert m.get("a", now=31.0) == 2
    for i, key in enumerate("bcd"):
        m.remember(key, 1, now=32.0 + i)
    assert len(m) == 3 and m.get("a", now=35.0) is None  # the least recently used went
    with pytest.raises(ValueError):
        StickyStarts(0.0)


@pytest.mark.parametrize(("scored", "held", "tier", "sticky"), [
    (StartDecision(0, "no-thresholds"), None, 0, False),
    (StartDecision(0, "score 0.1 < 0.5"), 1, 1, True),
    (StartDecision(1, "score 0.6 >= 0.5"), 1, 1, False),  # the score got there anyway
    (StartDecision(2, "score 0.9 >= 0.8"), 1, 2, False),
    (StartDecision(0, "score 0.1 < 0.5"), 2, 2, True),
])
def test_sticky_start(scored: StartDecision, held: int | None, tier: int,
                      sticky: bool) -> None:
    d = sticky_start(scored, held, ["small", "mid", "big"])
    assert d.tier == tier and d.reason.startswith("sticky") == sticky
    assert scored.reason in d.reason


# Through a real server: the small tier calls a tool that was not offered (tool_schema
# rejects it), the big one the right tool. A step after a tool result gets text from both.
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather",
                                                "parameters": WEATHER.parameters}}]


def body(task: str, step: int, **extra: Any) -> dict[str, Any]:
    """Step 1 or 2 of the conversation about ``task`` (2: the big tier's call, answered)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM.content},
                                      {"role": "user", "content": task}]
    if step == 2:
        messages += [{"role": "assistant", "content": None, "tool_calls": [
                         {"id": "call_b", "type": "function", "function": {
                             "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                     {"role": "tool", "tool_call_id": "call_b", "content": BIG_JSON[:5000]}]
    return {"model": "rung", "messages": messages, "tools": TOOLS, **extra}


@contextmanager
def ladder(sticky_s: float, db: Path | None = None) -> Iterator[tuple[LiveServer, UpstreamBehaviour,
                                              UpstreamBehaviour]]:
    small = UpstreamBehaviour(reply="Small says: no umbrella.",
                              tool_calls=[ToolCall("call_s", "get_wether", '{"city": "Paris"}')])
    big = UpstreamBehaviour(reply="Big says: take an umbrella.",
                            tool_calls=[ToolCall("call_b", "get_weather", '{"city": "Paris"}')])
    with upstream_server(small) as s, upstream_server(big) as b:
        cfg = config_of(tiers=[{**upstream_tier("small", s.url),
                                "verifiers": [{"type": "tool_schema"}]},
                               upstream_tier("big", b.url)],
                        routing={"thresholds": [], "sticky_s": sticky_s})
        with rung_server(cfg, store=db) as server:
            yield server, small, big


def ask(server: LiveServer, data: dict[str, Any]) -> tuple[str, str]:
    """(the tier that answered, the route header)."""
    r = http("POST", f"{server.url}/v1/chat/completions", data)
    assert r.status == 200, r.body[:300]
    return r.headers["x-rung-tier"], r.headers["x-rung-route"]


def test_a_conversation_that_escalated_starts_its_next_step_at_the_big_tier(
        tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    with ladder(sticky_s=60, db=db) as (server, small, big):
        tier, route = ask(server, body(TASK.content, 1))
        assert tier == "big" and "small:rejected(tool_schema=1.00-)" in route
        assert (small.calls, big.calls) == (1, 1)
        tier, route = ask(server, body(TASK.content, 2))
        assert tier == "big" and small.calls == 1 and big.calls == 2  # small never asked
        assert route.startswith("reason=sticky: an earlier step escalated to big")
        # another conversation (another task) is scored afresh: it starts small
        tier, route = ask(server, body("Weather in Oslo?", 2))
        assert tier == "small" and small.calls == 2 and "reason=no-thresholds" in route
        # explicit thresholds are this request's own routing: stickiness stays out of it
        tier, _ = ask(server, body(TASK.content, 2, rung={"thresholds": [1.0]}))
        assert tier == "small" and small.calls == 3
        # a first step of the same task (a new run, nothing answered yet) is not a later step
        tier, route = ask(server, body(TASK.content, 1))
        assert "reason=no-thresholds" in route and small.calls == 4
    store = SqliteStore(db)  # the trace keeps why the step started high
    try:
        traces = sorted(store.query(), key=lambda t: t.time)
    finally:
        store.close()
    assert [t.route["reason"].startswith("sticky") for t in traces] == \
        [False, True, False, False, False]
    assert traces[1].route["start"] == 1 and traces[1].tier == "big"


def test_without_stickiness_every_step_starts_small() -> None:
    with ladder(sticky_s=0) as (server, small, big):
        assert ask(server, body(TASK.content, 1))[0] == "big"
        tier, route = ask(server, body(TASK.content, 2))
        assert tier == "small" and (small.calls, big.calls) == (2, 1)
        assert "reason=no-thresholds" in route


def test_stickiness_expires_after_sticky_s_unused() -> None:
    with ladder(sticky_s=0.5) as (server, small, big):
        assert ask(server, body(TASK.content, 1))[0] == "big"
        assert ask(server, body(TASK.content, 2))[0] == "big"  # within 0.5 s: sticky
        time.sleep(0.7)
        tier, route = ask(server, body(TASK.content, 2))
        assert tier == "small" and "sticky" not in route
        assert (small.calls, big.calls) == (2, 2)
