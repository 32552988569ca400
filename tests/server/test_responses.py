"""POST /v1/responses through a real server, driven by the official SDK's
``client.responses``: plain, streamed, structured, a function-tool loop over
``previous_response_id`` (kept on SQLite and on Postgres), keys, errors and traces.
The upstream tier's answers are scripted; the embedded model's tests are marked slow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from rung.cli.main import main
from rung.config import Config
from rung.devtools.upstream import UpstreamBehaviour
from rung.server import responses_wire as rw
from rung.store.postgres import PostgresStore
from rung.store.sqlite import SqliteStore
from rung.types import Message, ToolCall
from tests.conftest import (
    LiveServer,
    config_of,
    http,
    rung_server,
    upstream_server,
    upstream_tier,
)
from tests.store.conftest import pg_admin_url, pg_url, rung_server_on  # noqa: F401 (fixtures)

CALL = ToolCall("call_w1", "get_weather", '{"city": "Paris"}')
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


@pytest.fixture
def gw() -> Iterator[tuple[LiveServer, UpstreamBehaviour, Path]]:
    """rung over one scripted upstream tier "up" (it calls get_weather when offered
    tools, and answers a tool result in text), with its trace file."""
    b = UpstreamBehaviour(reply="It is sunny in Paris.", tool_calls=[CALL], bodies=[])
    with upstream_server(b) as up, \
            rung_server(config_of(tiers=[upstream_tier("up", up.url)]),
                        store=_tmp_db()) as server:
        yield server, b, _DB[-1]


_DB: list[Path] = []


def _tmp_db() -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "traces.db"
    _DB.append(path)
    return path


def _traces(db: Path) -> dict[str, Any]:
    store = SqliteStore(db)
    try:
        return {t.id: t for t in store.query()}
    finally:
        store.close()


# -- the wire, table-driven -------------------------------------------------------------

@pytest.mark.parametrize(("body", "param", "code"), [
    ({"model": "up"}, "input", "missing_required_parameter"),
    ({"model": "up", "input": []}, "input", "missing_required_parameter"),
    ({"model": "up", "input": "hi", "background": True}, "background", "unsupported_parameter"),
    ({"model": "up", "input": "hi", "conversation": "conv_1"}, "conversation",
     "unsupported_parameter"),
    ({"model": "up", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type",
     "unsupported_parameter"),
    ({"model": "up", "input": "hi", "tools": [{"type": "function", "name": "bad name"}]},
     "tools[0].name", "invalid_value"),
    ({"model": "up", "input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function",
                                                                       "name": "nope"}},
     "tool_choice", "invalid_value"),
    ({"model": "up", "input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file_1"}]}]},
     "input[0].content[0].image_url", "invalid_value"),
    ({"model": "up", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]",
     "unsupported_parameter"),
    ({"model": "up", "input": [{"type": "function_call_output", "call_id": "c9",
                                "output": "x"}]}, None, "invalid_value"),
    ({"model": "up", "input": "hi", "text": {"format": {"type": "json_schema",
                                                        "name": "x"}}},
     "text.format.schema", "invalid_value"),
    ({"model": "up", "input": "hi", "modalities": ["text"]}, "modalities", "unknown_parameter"),
    ({"model": "up", "input": "hi", "temperature": 3}, "temperature", "invalid_value"),
])
def test_bad_bodies_name_their_parameter(body: dict[str, Any], param: str | None,
                                         code: str) -> None:
    from rung.errors import RequestError

    with pytest.raises(RequestError) as err:
        p = rw.parse(json.dumps(body).encode())
        rw.chat_request(p, (), max_messages=100)
    assert err.value.code == code
    if param is not None:
        assert err.value.param == param


def test_input_items_become_chat_turns() -> None:
    p = rw.parse(json.dumps({"model": "up", "instructions": "Be brief.", "input": [
        {"role": "developer", "content": "Use metric units."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"a\": 1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
        {"type": "function_call_output", "call_id": "c2", "output": "2"},
    ]}).encode())
    req = rw.chat_request(p, (Message("user", "before"),), max_messages=100)
    assert req.messages == (
        Message("system", "Be brief."), Message("user", "before"),
        Message("system", "Use metric units."), Message("user", "Hi"),
        Message("assistant", "Checking.", tool_calls=(ToolCall("c1", "f", "{}"),
                                                      ToolCall("c2", "g", "{\"a\": 1}"))),
        Message("tool", "1", tool_call_id="c1"), Message("tool", "2", tool_call_id="c2"))


# -- through the server, with the official SDK ------------------------------------------

def test_plain_response_and_its_trace(gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, up, db = gw
    r = _client(server.url).responses.create(model="up", input="Weather?",
                                             instructions="Answer briefly.",
                                             max_output_tokens=50, temperature=0.3,
                                             metadata={"team": "a"})
    assert r.output_text == "It is sunny in Paris."
    assert r.status == "completed" and r.object == "response" and r.id.startswith("resp_")
    assert r.usage is not None and r.usage.output_tokens == 5
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.metadata == {"team": "a"} and r.instructions == "Answer briefly."
    sent = (up.bodies or [])[-1]
    assert sent["messages"] == [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": "Weather?"}]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.3
    trace = _traces(db)[r.id]
    assert trace.tier == "up" and trace.status == "ok" and trace.response == r.output_text
    assert r.model_extra is not None and r.model_extra["rung"]["tier"] == "up"


def test_streamed_events_build_the_same_response(
        gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, _, db = gw
    client = _client(server.url)
    events = list(client.responses.create(model="up", input="Weather?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response  # type: ignore[union-attr]
    assert deltas == done.output_text == "It is sunny in Paris."
    with client.responses.stream(model="up", input="Weather?") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == deltas
    assert _traces(db)[done.id].stream


def test_a_function_tool_loop_over_previous_response_id(
        gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, up, db = gw
    client = _client(server.url)
    first = client.responses.create(model="up", input="Weather in Paris?",
                                    instructions="Use tools.", tools=[WEATHER])  # type: ignore[list-item]
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert (call.name, call.arguments, call.call_id) == (CALL.name, CALL.arguments, CALL.id)
    assert call.id.startswith("fc_") and first.status == "completed"
    second = client.responses.create(
        model="up", previous_response_id=first.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 C"}])
    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    sent = (up.bodies or [])[-1]
    # instructions are not carried over (OpenAI's rule); every turn is.
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL.as_dict()]},
        {"role": "tool", "content": "22 C", "tool_call_id": CALL.id}]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert client.responses.retrieve(first.id).output[0].type == "function_call"
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1].call_id == CALL.id and items[2].output == "22 C"  # type: ignore[union-attr]
    traces = _traces(db)
    assert traces[first.id].tool_use.called == ("get_weather",)


def test_streamed_function_call_events(gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, _, _ = gw
    events = list(_client(server.url).responses.create(
        model="up", input="Weather?", tools=[WEATHER], stream=True))  # type: ignore[list-item]
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == CALL.arguments and done.name == CALL.name  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert [o.type for o in final.output] == ["function_call"]


def test_store_false_keeps_nothing_and_unknown_ids_are_404(
        gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, _, db = gw
    client = _client(server.url)
    r = client.responses.create(model="up", input="hi", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="up", input="more", previous_response_id=r.id)
    assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]
    kept = client.responses.create(model="up", input="hi")
    client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    traces = _traces(db)  # every request left a trace, the refused one too
    assert traces[r.id].status == "ok" and kept.id in traces
    assert sum(t.status == "previous_response_not_found" for t in traces.values()) == 1


def test_bad_requests_are_openai_errors_with_a_trace(
        gw: tuple[LiveServer, UpstreamBehaviour, Path]) -> None:
    server, _, db = gw
    r = http("POST", f"{server.url}/v1/responses",
             {"model": "up", "input": "hi", "tools": [{"type": "file_search"}]})
    assert r.status == 400 and r.json()["error"]["param"] == "tools[0].type"
    r = http("POST", f"{server.url}/v1/responses", {"model": "nope", "input": "hi"})
    assert r.status == 404 and r.json()["error"]["code"] == "model_not_found"
    assert len(_traces(db)) == 2


def test_responses_are_kept_in_postgres_too(request: pytest.FixtureRequest) -> None:
    pg = str(request.getfixturevalue("pg_url"))
    b = UpstreamBehaviour(reply="Noted.", bodies=[])
    with upstream_server(b) as up, \
            rung_server_on(config_of(tiers=[upstream_tier("up", up.url)]),
                           PostgresStore(pg)) as server:
        client = _client(server.url)
        first = client.responses.create(model="up", input="Remember 7.")
        client.responses.create(model="up", input="What number?", previous_response_id=first.id)
        assert client.responses.retrieve(first.id).output_text == "Noted."
    assert (b.bodies or [])[-1]["messages"] == [
        {"role": "user", "content": "Remember 7."}, {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What number?"}]


def test_keys_read_and_continue_only_their_own_responses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "traces.db"

    def create(*args: str) -> str:
        assert main(["keys", "create", "--store", f"sqlite:///{db}", *args]) == 0
        return capsys.readouterr().out.strip().split("\t")[1]

    SqliteStore(db).close()
    alice, bob = create("--name", "alice"), create("--name", "bob", "--rpm", "2")
    with upstream_server() as up:
        cfg: Config = config_of(server={"auth": "required"},
                                tiers=[upstream_tier("up", up.url)])
        with rung_server_on(cfg, SqliteStore(db)) as server:
            mine = _client(server.url, alice).responses.create(model="up", input="hi")
            with pytest.raises(openai.NotFoundError):
                _client(server.url, bob).responses.retrieve(mine.id)
            with pytest.raises(openai.NotFoundError):
                _client(server.url, bob).responses.create(model="up", input="x",
                                                          previous_response_id=mine.id)
            again = _client(server.url, alice).responses.create(
                model="up", input="again", previous_response_id=mine.id)
            assert again.status == "completed"
            _client(server.url, bob).responses.create(model="up", input="x")  # bob's 2nd
            with pytest.raises(openai.RateLimitError):  # the rpm counts this path too
                _client(server.url, bob).responses.create(model="up", input="x")
            with pytest.raises(openai.AuthenticationError):
                _client(server.url, "rk-wrong").responses.create(model="up", input="x")


# -- the embedded model -----------------------------------------------------------------

@pytest.mark.slow
def test_structured_output_on_the_embedded_model(smol: LiveServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    # greedy: sampled, the model sometimes rambles inside a string until the token limit,
    # and the response is then rightly "incomplete" (3 of 40 sampled runs here), not JSON
    r = _client(smol.url).responses.create(
        model="smollm2-135m", input="Name a city and its country.", max_output_tokens=60,
        temperature=0, text={"format": {"type": "json_schema", "name": "place",
                                        "schema": schema, "strict": True}})
    assert r.status == "completed"
    place = json.loads(r.output_text)
    assert set(place) == {"city", "country"}
    assert r.text is not None and r.text.format.type == "json_schema"


@pytest.mark.slow
def test_streaming_on_the_embedded_model_matches_the_plain_answer(smol: LiveServer) -> None:
    client = _client(smol.url)
    ask: dict[str, Any] = {"model": "smollm2-135m", "input": "Name a color.",
                           "max_output_tokens": 16, "temperature": 0}
    plain = client.responses.create(**ask)
    events = list(client.responses.create(**ask, stream=True))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == plain.output_text and plain.output_text
    follow = client.responses.create(model="smollm2-135m", input="And another?",
                                     previous_response_id=plain.id, max_output_tokens=16,
                                     temperature=0)
    assert follow.output_text and follow.usage is not None
    assert follow.usage.input_tokens > plain.usage.input_tokens  # type: ignore[union-attr]
