"""BFCL: the items load, their tools are valid JSON schema, BFCL's AST check accepts the
ground truth of every item of every category and rejects it mutated, and `rung eval run
--dataset bfcl` sends the tools to real upstream tiers on loopback, checks their calls
and breaks the accuracy down per category (also in replay and the outcome table)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rung.cli.main import main
from rung.devtools.upstream import UpstreamBehaviour
from rung.eval import bfcl, datasets
from rung.types import ToolCall
from tests.conftest import SHARED_DATA, upstream_server
from tests.eval.test_live import _config

BFCL = SHARED_DATA / "bfcl"
# Items no answer can pass under BFCL's own checker: their ground truth leaves out, or
# allows no value for, an argument the function requires, or names an argument the
# function does not have (errors in the data, kept as BFCL scores them).
UNPASSABLE = {"live_simple_106-63-0", "live_simple_112-68-0", "live_multiple_507-149-4",
              "live_multiple_862-181-3", "live_multiple_964-207-0"}


@cache
def cases() -> tuple[bfcl.Case, ...]:
    return tuple(bfcl.load(BFCL)[0])


def of(category: str) -> list[bfcl.Case]:
    return [c for c in cases() if c.category == category]


def _first(values: list[Any], required: bool) -> Any:
    """A ground-truth value as a model would write it: the first allowed one (``""``:
    left out, unless the function requires the argument), nested dicts likewise."""
    value = next((v for v in values if v != ""), "") if required else \
        (values[0] if values else "")
    if isinstance(value, dict):
        return {k: _first(vs, False) for k, vs in value.items() if _first(vs, False) != ""}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_first([v], False) for v in value]
    return value


def _required(case: bfcl.Case, name: str) -> list[str]:
    function = next(f for f in case.functions if f["name"] == name)
    return list(function["parameters"].get("required") or ())


def truth_args(case: bfcl.Case) -> Iterator[tuple[str, dict[str, Any]]]:
    for want in case.ground_truth:
        ((name, allowed),) = want.items()
        required = _required(case, name)
        args = {p: _first(vs, p in required) for p, vs in allowed.items()}
        yield name, {p: v for p, v in args.items() if v != ""}


def calls_of(pairs: list[tuple[str, dict[str, Any]]]) -> list[ToolCall]:
    return [ToolCall(f"call_{i}", bfcl.tool_name(name), json.dumps(args))
            for i, (name, args) in enumerate(pairs)]


def test_every_category_loads_with_its_ground_truth() -> None:
    counts = {c: len(of(c)) for c in bfcl.CATEGORIES}
    assert counts == {"simple_python": 284, "multiple": 140, "parallel": 147,
                      "parallel_multiple": 139, "irrelevance": 168, "live_simple": 173,
                      "live_multiple": 758, "live_parallel": 13,
                      "live_parallel_multiple": 14, "live_irrelevance": 621,
                      "live_relevance": 12}
    for case in cases():
        assert case.messages and case.question
        assert case.tools or case.category == "live_irrelevance"  # some offer no function
        assert bool(case.ground_truth) == (case.category not in bfcl.NO_CALL + bfcl.ANY_CALL)
        assert all("." not in t.name for t in case.tools)
    one, digest = bfcl.load(BFCL / "BFCL_v4_parallel.json")
    assert [c.id for c in one] == [c.id for c in of("parallel")]
    assert digest != bfcl.load(BFCL)[1]


def _types(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "type" in schema:
            yield str(schema["type"])
        for key in ("items",):
            yield from _types(schema.get(key))
        for sub in (schema.get("properties") or {}).values():
            yield from _types(sub)


def test_tools_are_valid_json_schema_with_json_types() -> None:
    meta = jsonschema.Draft202012Validator
    for case in cases():
        for tool in case.tools:
            assert tool.parameters is not None and tool.parameters["type"] == "object"
            meta.check_schema(tool.parameters)
            assert set(_types(tool.parameters)) <= {"object", "number", "integer", "string",
                                                    "boolean", "array"}


@pytest.mark.parametrize(("bfcl_schema", "json_schema"), [
    ({"type": "dict", "properties": {"x": {"type": "float", "description": "d",
                                           "default": 1.5, "optional": True}},
      "required": ["x"]},
     {"type": "object", "properties": {"x": {"type": "number", "description": "d",
                                             "default": 1.5}}, "required": ["x"]}),
    ({"type": "tuple", "items": {"type": "dict", "properties": {"a": {"type": "any"}}}},
     {"type": "array", "items": {"type": "object", "properties": {"a": {}}}}),
    ({"type": "array", "items": {"type": "string"}, "enum": ["a", "b"]},
     {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}),
    ({"type": "integer", "enum": [1, 2], "maximum": 5}, {"type": "integer", "enum": [1, 2],
                                                          "maximum": 5}),
])
def test_schema_conversion(bfcl_schema: dict[str, Any], json_schema: dict[str, Any]) -> None:
    assert bfcl.json_schema(bfcl_schema) == json_schema


def test_ground_truth_values_fit_the_converted_schemas() -> None:
    """The tools offered accept the answers BFCL expects (so the conversion loses
    nothing a right answer needs), apart from the data's own errors."""
    misfits = []
    for case in cases():
        if case.id in UNPASSABLE:
            continue
        tools = {t.name: t for t in case.tools}
        for name, args in truth_args(case):
            schema = tools[bfcl.tool_name(name)].parameters
            if not jsonschema.Draft202012Validator(schema).is_valid(args):
                misfits.append(case.id)
    assert len(misfits) < 0.02 * len(cases()), misfits


@pytest.mark.parametrize("category", [c for c in bfcl.CATEGORIES
                                      if c not in bfcl.NO_CALL + bfcl.ANY_CALL])
def test_the_ground_truth_is_right_and_mutations_are_wrong(category: str) -> None:
    for case in of(category):
        truth = list(truth_args(case))
        verdict = bfcl.check(case, calls_of(truth))
        assert verdict.correct is (case.id not in UNPASSABLE), (case.id, verdict.why)
        if case.id in UNPASSABLE:
            continue
        for label, mutated in mutations(case, truth):
            got = bfcl.check(case, mutated)
            assert not got.correct, (case.id, label)
            assert got.why
        if len(truth) > 1:
            assert bfcl.check(case, calls_of(truth[::-1])).correct, case.id


def mutations(case: bfcl.Case,
              truth: list[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, list[ToolCall]]]:
    """The ground truth with one thing wrong."""
    name, args = truth[0]
    rest = truth[1:]
    yield "wrong name", calls_of([(name + "_x", args), *rest])
    yield "extra argument", calls_of([(name, {**args, "zz_unexpected": 1}), *rest])
    yield "no call", []
    yield "unparseable arguments", [ToolCall("c", bfcl.tool_name(name), "{'a': 1"),
                                    *calls_of(rest)]
    required = [p for p in _required(case, name) if p in args]
    if required:
        dropped = {k: v for k, v in args.items() if k != required[0]}
        yield "missing required", calls_of([(name, dropped), *rest])
    ((_, allowed),) = case.ground_truth[0].items()
    for param, value in args.items():
        wrong = _wrong(value)
        if wrong in allowed[param]:  # e.g. both booleans allowed: then a wrong type
            wrong = "zz not allowed"
        yield f"wrong value of {param}", calls_of([(name, {**args, param: wrong}), *rest])
    if len(truth) > 1:
        yield "a parallel call missing", calls_of(truth[:-1])
    else:
        yield "a call too many", calls_of([*truth, *truth])


def _wrong(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7919
    if isinstance(value, list):
        return [*value, "zz-not-allowed"]
    if isinstance(value, dict):
        return {**value, "zz_unexpected": "x"}
    return f"{value} zz not allowed"


@pytest.mark.parametrize("category", bfcl.NO_CALL)
def test_irrelevance_is_right_only_without_a_call(category: str) -> None:
    for case in of(category):
        assert bfcl.check(case, []).correct
        name = case.tools[0].name if case.tools else "anything"
        assert not bfcl.check(case, [ToolCall("c", name, "{}")]).correct


def test_relevance_needs_some_call_but_not_a_particular_one() -> None:
    for case in of("live_relevance"):
        assert not bfcl.check(case, []).correct
        assert bfcl.check(case, [ToolCall("c", case.tools[-1].name, "{}")]).correct
        assert not bfcl.check(case, [ToolCall("c", case.tools[0].name, "not json")]).correct


FLOAT_FN = {"name": "math.area", "parameters": {"type": "dict", "required": ["r"], "properties": {
    "r": {"type": "float"}, "unit": {"type": "string"},
    "dims": {"type": "array", "items": {"type": "integer"}},
    "opts": {"type": "dict", "properties": {"k": {"type": "string"}}},
    "rows": {"type": "array", "items": {"type": "dict"}}}}}
TRUTH: dict[str, dict[str, list[Any]]] = {"math.area": {"r": [2.0], "unit": ["square meters", ""], "dims": [[1, 2], ""],
                       "opts": [{"k": ["New York"]}, ""],
                       "rows": [[{"a": ["x"]}, {"a": ["y"]}], ""]}}


@pytest.mark.parametrize(("args", "right"), [
    ({"r": 2}, True),  # an int where a float is expected
    ({"r": 2.0, "unit": "Square-Meters"}, True),  # case, spaces and punctuation
    ({"r": 2.0, "unit": "square feet"}, False),
    ({"r": "2"}, False),  # a string is not a float
    ({"r": 2.0, "dims": [1, 2]}, True),
    ({"r": 2.0, "dims": [2, 1]}, False),  # lists keep their order
    ({"r": 2.0, "dims": []}, True),  # empty where it may be left out (as BFCL reads "")
    ({"r": 2.0, "opts": {"k": "new york"}}, True),
    ({"r": 2.0, "opts": {"k": "Boston"}}, False),
    ({"r": 2.0, "opts": {"k": "new york", "z": "1"}}, False),
    ({"r": 2.0, "rows": [{"a": "X"}, {"a": "y"}]}, True),
    ({"r": 2.0, "rows": [{"a": "y"}, {"a": "x"}]}, False),
    ({"r": True}, False),  # a bool is no number
])
def test_values_compare_as_bfcl_compares_them(args: dict[str, Any], right: bool) -> None:
    case = bfcl.Case(id="t", category="simple_python", messages=(),
                     tools=(bfcl.to_tool(FLOAT_FN),), functions=(FLOAT_FN,),
                     ground_truth=(TRUTH,))
    assert bfcl.check(case, [ToolCall("c", "math_area", json.dumps(args))]).correct is right


def test_parallel_calls_pair_up_even_where_greedy_matching_would_not() -> None:
    fn = {"name": "f", "parameters": {"type": "dict", "required": [], "properties": {
        "x": {"type": "integer"}}}}
    # the first call fits both ground-truth calls, the second only the first
    case = bfcl.Case(id="p", category="parallel", messages=(), tools=(bfcl.to_tool(fn),),
                     functions=(fn,), ground_truth=({"f": {"x": [1, 2]}}, {"f": {"x": [1]}}))
    calls = calls_of([("f", {"x": 1}), ("f", {"x": 2})])
    assert bfcl.check(case, calls).correct
    assert not bfcl.check(case, calls_of([("f", {"x": 2}), ("f", {"x": 2})])).correct
    # each ground-truth call fits a call, but only the same one
    shared = bfcl.check(case, calls_of([("f", {"x": 1}), ("f", {"x": 3})]))
    assert not shared.correct and "sharing" in shared.why


def test_eval_run_on_bfcl_through_upstream_tiers(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The small tier always makes the ground-truth call of the first simple_python item
    (right there and on every relevance item, wrong elsewhere); the big tier never calls
    (right on the irrelevance items only); the policy is the alias's cascade over both."""
    first = of("simple_python")[0]
    small = UpstreamBehaviour(tool_calls=calls_of(list(truth_args(first))))
    big = UpstreamBehaviour(reply="No function fits.")
    out = tmp_path / "run"
    with upstream_server(small) as a, upstream_server(big) as b:
        argv = ["eval", "run", "--config", str(_config(tmp_path, a.url, b.url)),
                "--dataset", "bfcl", "--data", str(BFCL), "--limit", "2",
                "--tiers", "small,big", "--policy", "--out", str(out)]
        assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    sent = small.last_body
    assert sent is not None and sent["tool_choice"] == "auto" and sent["temperature"] == 0
    assert all("." not in t["function"]["name"] for t in sent["tools"])
    n = len(bfcl.CATEGORIES) * 2
    assert summary["small"]["n"] == summary["big"]["n"] == n
    small_right = {c: 0.0 for c in bfcl.CATEGORIES} | {"simple_python": 0.5,
                                                       "live_relevance": 1.0}
    big_right = {c: 1.0 if c in bfcl.NO_CALL else 0.0 for c in bfcl.CATEGORIES}
    assert {c: v["accuracy"] for c, v in summary["small"]["categories"].items()} == small_right
    assert {c: v["accuracy"] for c, v in summary["big"]["categories"].items()} == big_right
    assert summary["big"]["accuracy"] == pytest.approx(4 / n, abs=1e-4)
    # through the alias: the small tier's calls pass its verifier (no logprobs to doubt)
    assert summary["policy"]["categories"] == summary["small"]["categories"]
    assert "| simple_python | 2 | 0.500 | 0.000 |" in captured.err
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    right = next(r for r in rows if r["item"] == f"bfcl/{first.id}" and r["target"] == "small")
    assert right["correct"] and right["category"] == "simple_python"
    assert [c["function"]["name"] for c in right["tool_calls"]] == ["calculate_triangle_area"]
    assert all(r["why"] for r in rows)
    assert json.loads((out / "manifest.json").read_text())["dataset"] == "bfcl"
    with (out / "outcomes" / "bfcl" / "bfcl_responses.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == n
    assert any("calculate_triangle_area(" in r["small_response"] for r in table)
    check_replay_per_category(out, rows, capsys)


def check_replay_per_category(out: Path, rows: list[dict[str, Any]],
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Replay reads the run's rows, once they carry logprobs as a local tier's do (the
    upstream test server gives none): a small answer is trusted when it is a call."""
    with (out / "items.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps({**r, "mean_logprob": -0.1 if r["tool_calls"] else -3.0}) + "\n")
    assert main(["eval", "replay", "--run", str(out), "--tiers", "small,big",
                 "--thresholds", "-1"]) == 0
    result = json.loads(capsys.readouterr().out)
    per = result["categories"]
    assert set(per) == set(bfcl.CATEGORIES)
    # the small tier calls on every item: the cascade always keeps its answer
    assert per["simple_python"] == {"n": 2, "tiers": {"small": 0.5, "big": 0.0},
                                    "cascade": 0.5}
    assert per["irrelevance"]["cascade"] == 0.0
    assert result["cascade"]["accuracy"] == pytest.approx(3 / 22, abs=1e-4)


def test_limit_takes_the_first_items_of_each_category() -> None:
    items, _ = datasets.load("bfcl", str(BFCL))
    kept = datasets.first(items, 3)
    assert len(kept) == 3 * len(bfcl.CATEGORIES)
    assert kept[:3] == items[:3]
    gsm = [datasets.Item(id=str(i), dataset="gsm8k", prompt="", question="", reference="")
           for i in range(5)]
    assert datasets.first(gsm, 2) == gsm[:2] and datasets.first(gsm, None) == gsm


def test_replay_with_the_tool_verifiers_gates_on_schema_and_argument_logprob() -> None:
    """A wrong small call is caught by tool_schema (items 0, 4, 8) or by a low argument
    logprob (items 1, 5, 9, while the whole answer's mean logprob says nothing); a text
    answer with no call passes both, as it does live."""
    from rung.eval.replay import replay

    rows = []
    for i in range(12):
        schema_ok, arg_lp = i % 4 != 0, (-2.0 if i % 4 == 1 else -0.1)
        no_call = i % 4 == 3
        rows += [
            {"item": str(i), "target": "s", "seconds": 1.0, "category": "simple_python",
             "correct": i % 4 >= 2, "mean_logprob": -0.3, "schema_ok": schema_ok,
             "arg_logprob": None if no_call else arg_lp},
            {"item": str(i), "target": "b", "seconds": 4.0, "category": "simple_python",
             "correct": True, "mean_logprob": -0.3, "schema_ok": True, "arg_logprob": -0.1},
        ]
    plain = replay(rows, ["s", "b"], target=1.0)["cascade"]
    assert plain["accuracy"] == 1.0 and plain["compute_vs_largest"] == 1.25  # always both
    tools = replay(rows, ["s", "b"], verifier="tools", thresholds=[-1.0])
    c = tools["cascade"]
    assert tools["verifier"] == "tools" and "tool_schema" in tools["protocol"]
    assert c["accuracy"] == 1.0  # the small tier kept on items 2, 3, 6, 7, 10, 11 only
    assert c["compute_vs_largest"] == pytest.approx((12 + 6 * 4) / 48, abs=1e-4)
    fixed = replay(rows, ["s", "b"], verifier="tools", thresholds=[-3.0])["cascade"]
    assert fixed["accuracy"] == pytest.approx(9 / 12, abs=1e-4)  # items 1, 5, 9 slip through
    crossed = replay(rows, ["s", "b"], target=1.0, verifier="tools")
    assert "chosen on one half" in crossed["protocol"]
