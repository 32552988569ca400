"""Further calls after a free answer's: the plan, what a continuation adds, and the form
it is appended in (the model side is in tests/backends/test_llama_more_calls.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rung.tools import more
from rung.tools.parse import CallReader, calls_in
from rung.types import ChatRequest, Message, ToolChoice, ToolSpec

WEATHER = ToolSpec("get_weather", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def _req(**kw: object) -> ChatRequest:
    base: dict[str, object] = {"messages": (Message("user", "weather?"),), "tools": (WEATHER,)}
    base.update(kw)
    return ChatRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, True),
    ({"tool_choice": ToolChoice("auto")}, True),
    ({"tool_choice": ToolChoice("required")}, False),  # a grammar holds it from the start
    ({"tool_choice": ToolChoice("none")}, False),
    ({"parallel_tool_calls": False}, False),
    ({"logprobs": True}, True),
    ({"tools": ()}, False),
])
def test_applies_only_to_free_answers_that_may_make_several_calls(
        kw: dict[str, object], expected: bool) -> None:
    assert more.applies(_req(**kw)) is expected


@pytest.mark.parametrize(("answer", "bare"), [
    (f"<tool_call>\n{PARIS}\n</tool_call>", False),
    (f"<tool_call>\n{PARIS}", False),  # the closing tag missing at the end
    (f"```json\n{PARIS}\n```", False),
    (PARIS, True),
    (f"[{PARIS}]", True),
])
def test_a_calls_only_answer_is_planned_as_an_open_list(answer: str, bare: bool) -> None:
    plan = more.plan(answer)
    assert plan is not None and plan.bare is bare
    assert [c.name for c in plan.calls] == ["get_weather"]
    assert json.loads(more.list_prefix(plan.calls) + "]") == [json.loads(PARIS)]


@pytest.mark.parametrize("answer", [
    "It is sunny.",
    f"Let me check. <tool_call>\n{PARIS}\n</tool_call>",  # text with the call: left as is
    "",
])
def test_an_answer_with_text_is_not_continued(answer: str) -> None:
    assert more.plan(answer) is None


LONDON = '{"name": "get_weather", "arguments": {"city": "London"}}'


@pytest.mark.parametrize(("text", "city"), [
    (f", {LONDON}", "London"),
    (f"\n,{LONDON} ", "London"),
    (', {"name": "get_weather", "argu', None),  # cut off by the budget
    ("", None),
])
def test_the_next_call_is_read_from_what_the_continuation_wrote(text: str,
                                                                city: str | None) -> None:
    call = more.next_call(text)
    assert (json.loads(call.arguments)["city"] if call else None) == city


def test_repeats_compares_name_and_arguments_not_their_spelling() -> None:
    plan = more.plan(PARIS)
    assert plan is not None
    again = more.next_call(', {"arguments": {"city":"Paris"}, "name": "get_weather"}')
    other = more.next_call(f", {LONDON}")
    assert again is not None and other is not None
    assert more.repeats(plan.calls, again) and not more.repeats(plan.calls, other)


@pytest.mark.parametrize("answer", [
    f"<tool_call>\n{PARIS}\n</tool_call>", f"```json\n{PARIS}\n```", PARIS, f"[{PARIS}]"])
def test_added_calls_render_in_a_form_the_stream_parser_reads_after_the_first(
        answer: str) -> None:
    plan = more.plan(answer)
    london = more.next_call(f", {LONDON}")
    assert plan is not None and london is not None
    whole = answer + plan.render([london])
    reader = CallReader()
    text, calls = reader.push(whole)
    rest, last = reader.finish()
    assert not (text + rest).strip()
    assert [json.loads(c.arguments)["city"] for c in calls + last] == ["Paris", "London"]


def test_several_json_values_one_after_another_are_several_calls() -> None:
    got = calls_in(f"{PARIS}\n[{PARIS}, {PARIS}]")
    assert got is not None and len(got) == 3
    assert calls_in(f'{PARIS} {{"city": "x"}}') is None  # one is not a call
    assert calls_in(f"{PARIS} and more") is None


def test_the_share_of_going_on_splits_the_mass_of_comma_and_bracket_tokens() -> None:
    pieces = [",", " ,", ", {", "]", " ]", "]\n", "}", "hello", " "]
    go_on, close = more.decision_tokens(pieces)
    assert go_on.tolist() == [0, 1, 2] and close.tolist() == [3, 4, 5]
    logits = np.full(len(pieces), -50.0, dtype=np.float32)
    logits[0], logits[3], logits[7] = np.log(0.2), np.log(0.6), np.log(0.2)
    assert more.go_on_share(logits, go_on, close) == pytest.approx(0.25)  # others aside
    assert more.go_on_share(np.full(len(pieces), -np.inf, dtype=np.float32),
                            go_on, close) == 0.0


def test_the_grammar_compiles() -> None:
    pytest.importorskip("llama_cpp")
    from llama_cpp import llama_grammar

    text = more.grammar_text((WEATHER, ToolSpec("noop")))
    assert text.startswith('root ::= more-ws "," more-ws more-call')
    llama_grammar.LlamaGrammar.from_string(text, verbose=False)
