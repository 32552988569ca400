"""Reading calls out of generated text: every form models write, whole or streamed in
small pieces (the result must not depend on where the pieces break)."""

from __future__ import annotations

import json

import pytest

from rung.tools.parse import CallReader, calls_in

W = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
T = '{"name": "get_time", "arguments": {"tz": "UTC"}}'

# (text, content, [(name, arguments)])
CASES = [
    ("plain text", "It is sunny.", "It is sunny.", []),
    ("tag", f"<tool_call>\n{W}\n</tool_call>", "", [("get_weather", {"city": "Paris"})]),
    ("two tags", f"<tool_call>\n{W}\n</tool_call>\n<tool_call>\n{T}\n</tool_call>", "",
     [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"})]),
    ("text then tag", f"Let me check.\n<tool_call>{W}</tool_call>", "Let me check.\n",
     [("get_weather", {"city": "Paris"})]),
    ("unclosed tag at the end", f"<tool_call>\n{W}\n", "", [("get_weather", {"city": "Paris"})]),
    ("fence", f"```json\n{W}\n```", "", [("get_weather", {"city": "Paris"})]),
    ("fence after text", f"Sure:\n```json\n{W}\n```", "Sure:\n",
     [("get_weather", {"city": "Paris"})]),
    ("unclosed fence", f"```json\n{W}\n", "", [("get_weather", {"city": "Paris"})]),
    ("bare object", W, "", [("get_weather", {"city": "Paris"})]),
    ("bare list", f"[{W}, {T}]", "", [("get_weather", {"city": "Paris"}),
                                       ("get_time", {"tz": "UTC"})]),
    ("parameters key", '{"name": "f", "parameters": {"a": 1}}', "", [("f", {"a": 1})]),
    ("arguments as JSON text", '{"name": "f", "arguments": "{\\"a\\": 1}"}', "",
     [("f", {"a": 1})]),
    ("no arguments", '{"name": "f"}', "", [("f", {})]),
    ("code fence that is no call", "```python\nprint(1)\n```", "```python\nprint(1)\n```", []),
    ("JSON that is no call", '{"answer": 4}', '{"answer": 4}', []),
    ("tag that is no call", "<tool_call>oops</tool_call> done",
     "<tool_call>oops</tool_call> done", []),
    ("less-than in prose", "a < b and x <tool", "a < b and x <tool", []),
]


def read(pieces: list[str]) -> tuple[str, list[tuple[str, object]]]:
    reader = CallReader()
    content, calls = "", []
    for p in pieces:
        text, found = reader.push(p)
        content += text
        calls += found
    text, found = reader.finish()
    content += text
    calls += found
    return content, [(c.name, json.loads(c.arguments)) for c in calls]


@pytest.mark.parametrize(("name", "text", "content", "calls"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("size", [1, 3, 1000])
def test_calls_and_content_whatever_the_pieces(name: str, text: str, content: str,
                                               calls: list[tuple[str, object]],
                                               size: int) -> None:
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    assert read(pieces) == (content, calls)


def test_prose_streams_at_once_and_a_call_as_soon_as_its_block_closes() -> None:
    reader = CallReader()
    assert reader.push("Hello there, ") == ("Hello there, ", [])
    assert reader.push("I will <tool") == ("I will ", [])  # may be a marker: held
    assert reader.push("_call>" + W) == ("", [])
    text, calls = reader.push("</tool_call>")
    assert text == "" and [c.name for c in calls] == ["get_weather"]
    assert calls[0].id.startswith("call_") and len(calls[0].id) == 29


def test_unparseable_arguments_text_is_kept_for_the_verifier() -> None:
    calls = calls_in('{"name": "f", "arguments": "{not json"}')
    assert calls is not None and calls[0].arguments == "{not json"


def test_a_list_with_one_non_call_is_no_call() -> None:
    assert calls_in(f'[{W}, {{"x": 1}}]') is None
