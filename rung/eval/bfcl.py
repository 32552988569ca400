"""BFCL (the Berkeley Function Calling Leaderboard): its single-turn items, and its AST
check of the calls a model made.

An item is a conversation, the functions offered and the ground truth: a list of calls
``{name: {param: [allowed values...]}}``, where ``""`` among the values means the argument
may be left out. Functions are offered as OpenAI tools: BFCL's parameter types (``dict``,
``float``, ``tuple``, ``any``) become JSON schema's, and dots in names become underscores
(OpenAI's tool names allow none; BFCL's own OpenAI handler maps them the same way).

The check follows BFCL's ``ast_checker`` for Python: the right function, every required
argument, no argument the ground truth does not name, each value among the allowed ones
(strings compared after BFCL's normalisation; an int where a float is expected; lists,
dicts and lists of dicts as BFCL compares them), as many calls as the ground truth has,
matched to it in any order. Irrelevance items are right with no call, live_relevance
items with at least one. One deliberate difference: parallel calls are matched to the
ground truth by a full bipartite search where BFCL matches greedily, so an answer whose
calls fit the ground truth in some order is never marked wrong because an earlier call
also fit another ground-truth call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rung.errors import ConfigError
from rung.types import Message, Role, ToolCall, ToolSpec

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
              "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
              "live_irrelevance", "live_relevance")
NO_CALL = ("irrelevance", "live_irrelevance")  # right: no call at all
ANY_CALL = ("live_relevance",)  # right: at least one call (BFCL checks nothing more)

GroundTruth = tuple[dict[str, dict[str, list[Any]]], ...]
Args = dict[str, Any]

_JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array", "string": "string",
               "integer": "integer", "boolean": "boolean", "array": "array",
               "object": "object", "number": "number"}
# Schema keywords BFCL's functions use that mean the same in JSON schema; the rest
# (e.g. ``optional``) are BFCL's own and left out.
_KEEP = ("description", "enum", "required", "default", "format", "minimum", "maximum",
         "minItems", "maxItems")
# How BFCL's Python checker reads each parameter type (``any`` is compared as a string).
_PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float,
                                  "boolean": bool, "array": list, "tuple": list,
                                  "dict": dict, "any": str}
_PUNCTUATION = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Case:
    """One BFCL item: what is sent (``messages``, ``tools``) and what the check reads
    (``functions`` as BFCL wrote them, and ``ground_truth``; empty for the relevance
    categories)."""

    id: str
    category: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    functions: tuple[dict[str, Any], ...]
    ground_truth: GroundTruth = ()

    @property
    def question(self) -> str:
        """The last user turn: what a router sees of the item."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")


@dataclass(frozen=True)
class Result:
    """The check's verdict and, in a few words, why."""

    correct: bool
    why: str


def tool_name(name: str) -> str:
    """The OpenAI tool name of a BFCL function (dots are not allowed there)."""
    return name.replace(".", "_")


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """BFCL's parameter schema as JSON schema, recursively: its types renamed (``any``
    loses its type: any value), its own keywords dropped. An enum of single values on an
    array moves to the array's items, where a JSON schema validator looks for it."""
    out: dict[str, Any] = {}
    kind = _JSON_TYPES.get(str(schema.get("type")))
    if kind is not None:
        out["type"] = kind
    for key in _KEEP:
        if key in schema:
            out[key] = schema[key]
    if isinstance(schema.get("properties"), Mapping):
        out["properties"] = {k: json_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("items"), Mapping):
        out["items"] = json_schema(schema["items"])
    enum = out.get("enum")
    if kind == "array" and isinstance(enum, list) and not any(
            isinstance(v, list) for v in enum):
        items = out.setdefault("items", {})
        items.setdefault("enum", out.pop("enum"))
    return out


def to_tool(function: Mapping[str, Any]) -> ToolSpec:
    """A BFCL function as the tool rung offers the model."""
    parameters = json_schema(function.get("parameters") or {})
    parameters["type"] = "object"
    parameters.setdefault("properties", {})
    return ToolSpec(name=tool_name(str(function["name"])),
                    description=function.get("description"), parameters=parameters)


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _case(row: Mapping[str, Any], category: str,
          answers: Mapping[str, Sequence[dict[str, Any]]]) -> Case:
    turn = row["question"][0]
    messages = tuple(Message(cast(Role, m["role"]), str(m.get("content") or "")) for m in turn)
    functions = tuple(row["function"])
    truth = answers.get(row["id"])
    if truth is None and category not in NO_CALL + ANY_CALL:
        raise ConfigError(f"BFCL item {row['id']} has no ground truth in possible_answer/")
    return Case(id=str(row["id"]), category=category, messages=messages,
                tools=tuple(to_tool(f) for f in functions), functions=functions,
                ground_truth=tuple(truth or ()))


def _files(path: Path) -> list[tuple[str, Path]]:
    """(category, file) for a BFCL folder (every category in it) or one category's file."""
    if path.is_dir():
        found = [(c, path / f"BFCL_v4_{c}.json") for c in CATEGORIES]
        found = [(c, f) for c, f in found if f.is_file()]
        if not found:
            raise ConfigError(f"no BFCL_v4_<category>.json files in {path}")
        return found
    m = re.fullmatch(r"BFCL_v\d+_(\w+)\.json", path.name)
    if m is None or m.group(1) not in CATEGORIES:
        raise ConfigError(f"{path}: not a BFCL_v4_<category>.json file of a single-turn "
                          f"category ({', '.join(CATEGORIES)})")
    return [(m.group(1), path)]


def load(path: str | Path) -> tuple[list[Case], str]:
    """The items of a BFCL folder or category file (ground truth from ``possible_answer/``
    beside it) and the sha256 of everything read, in category order."""
    digest = hashlib.sha256()
    cases: list[Case] = []
    for category, file in _files(Path(path)):
        answer_file = file.parent / "possible_answer" / file.name
        answers: dict[str, list[dict[str, Any]]] = {}
        digest.update(file.read_bytes())
        if answer_file.is_file():
            digest.update(answer_file.read_bytes())
            answers = {r["id"]: r["ground_truth"] for r in _rows(answer_file)}
        cases += [_case(r, category, answers) for r in _rows(file)]
    return cases, digest.hexdigest()


# -- the check ---------------------------------------------------------------------------


def _decode(calls: Sequence[ToolCall]) -> list[tuple[str, Args]] | str:
    """Each call's name and arguments, or why they are not calls BFCL would read (its
    decoder fails on any argument text that is not a JSON object)."""
    out = []
    for i, call in enumerate(calls):
        try:
            args = json.loads(call.arguments)
        except json.JSONDecodeError:
            return f"call {i} ({call.name}): arguments are not JSON"
        if not isinstance(args, dict):
            return f"call {i} ({call.name}): arguments are not a JSON object"
        out.append((call.name, args))
    return out


def check(case: Case, calls: Sequence[ToolCall]) -> Result:
    """BFCL's verdict on the calls a model made for ``case``."""
    decoded = _decode(calls)
    if case.category in NO_CALL:
        # BFCL reads a call whose arguments are not a JSON object as no call.
        if isinstance(decoded, str) or not decoded:
            return Result(True, "no call" if not calls else f"no readable call: {decoded}")
        return Result(False, f"called {decoded[0][0]} where no function fits")
    if isinstance(decoded, str):
        return Result(False, decoded)
    if case.category in ANY_CALL:
        return Result(bool(decoded), "called a function" if decoded else "no call")
    if len(decoded) != len(case.ground_truth):
        return Result(False, f"{len(decoded)} calls, want {len(case.ground_truth)}")
    problem = _match(case, decoded)
    return Result(problem is None, problem or "calls match the ground truth")


def _match(case: Case, decoded: Sequence[tuple[str, Args]]) -> str | None:
    """None when the calls can be paired one to one with the ground truth's, in any
    order; else why the first unpaired ground-truth call fits none of them."""
    fits: list[list[int]] = []
    for want in case.ground_truth:
        ((name, allowed),) = want.items()
        function = _function(case, name)
        errors = [_call_problem(function, name, allowed, got, args) for got, args in decoded]
        if all(errors):
            return errors[0] if len(decoded) == 1 else f"no call fits {name}: {errors[0]}"
        fits.append([i for i, e in enumerate(errors) if e is None])
    if _pairs(fits, 0, set()):
        return None
    return "calls fit the ground truth only by sharing a call"


def _pairs(fits: Sequence[Sequence[int]], j: int, used: set[int]) -> bool:
    """Whether ground-truth calls ``j``... can each take a different unused call."""
    if j == len(fits):
        return True
    return any(_pairs(fits, j + 1, used | {i}) for i in fits[j] if i not in used)


def _function(case: Case, name: str) -> dict[str, Any]:
    found = next((f for f in case.functions if f.get("name") == name), None)
    if found is None:
        raise ConfigError(f"BFCL item {case.id}: ground truth names {name}, not offered")
    return found


def _call_problem(function: Mapping[str, Any], name: str, allowed: Mapping[str, list[Any]],
                  got: str, args: Args) -> str | None:
    """Why one call is not the ground-truth call ``name`` (None: it is)."""
    if got != tool_name(name):
        return f"called {got}, want {tool_name(name)}"
    params = function.get("parameters") or {}
    details: Mapping[str, Any] = params.get("properties") or {}
    missing = [p for p in params.get("required") or () if p not in args]
    if missing:
        return f"missing required argument {missing[0]!r}"
    for param, value in args.items():
        if param not in details or param not in allowed:
            return f"unexpected argument {param!r}"
        if not _value_ok(value, allowed[param], details[param]):
            return f"{param}={json.dumps(value)[:60]} not among {json.dumps(allowed[param])[:80]}"
    left_out = [p for p, values in allowed.items() if p not in args and "" not in values]
    if left_out:
        return f"missing argument {left_out[0]!r}"
    return None


def _value_ok(value: Any, allowed: list[Any], detail: Mapping[str, Any]) -> bool:
    """One argument's value against its allowed values, as BFCL's Python checker does:
    a type check first (a value of the ground truth's own type passes as a "variable"
    and is then compared as it is), then a comparison that depends on the type."""
    described = str(detail.get("type"))
    expected = _PYTHON_TYPES.get(described, str)
    inner = None
    if described in ("array", "tuple"):
        inner = _PYTHON_TYPES.get(str((detail.get("items") or {}).get("type")), str)
    if described == "float" and type(value) is int:
        value = float(value)
    ok, variable = _type_ok(value, allowed, expected, inner)
    if not ok:
        return False
    if variable:
        return value in allowed
    if expected is dict:
        return _dict_ok(value, allowed)
    if expected is list and inner is dict:
        return _dicts_ok(value, allowed)
    if expected is str:
        return standardize(value) in [standardize(a) for a in allowed if isinstance(a, str)]
    if expected is list:
        return _standard_list(value) in [_standard_list(a) for a in _lists(allowed)]
    return value in allowed


def _answer_type(allowed: Iterable[Any]) -> type | None:
    return next((type(a) for a in allowed if a != ""), None)


def _type_ok(value: Any, allowed: list[Any], expected: type,
             inner: type | None) -> tuple[bool, bool]:
    """(type accepted, read as a variable): the value has the described type (and, for
    lists, each item the items' type, against some allowed list), or the type of the
    ground truth's own values when that differs from the described one."""
    answer_type = _answer_type(allowed)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if inner is None or not isinstance(value, list):
            return True, variable
        items: list[Any] = value
        return any(not isinstance(a, list) or all(_type_ok(v, a, inner, None)[0]
                                                  for v in items)
                   for a in allowed), variable
    return answer_type is not None and type(value) is answer_type, True


def standardize(text: str) -> str:
    """BFCL's string normalisation: no spaces or ``,./-_*^``, lower case, double quotes
    (so "April 1, 2024" and "april 1 2024" compare equal)."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def _standard(value: Any) -> Any:
    return standardize(value) if isinstance(value, str) else value


def _standard_list(values: Sequence[Any]) -> list[Any]:
    return [_standard(v) for v in values]


def _lists(allowed: Sequence[Any]) -> list[Sequence[Any]]:
    """The allowed lists; an allowed ``""`` (may be left out) also allows an empty list,
    as in BFCL, which reads ``""`` as a sequence there."""
    return [a if isinstance(a, list) else [] for a in allowed if isinstance(a, list) or a == ""]


def _dict_ok(value: Any, allowed: Sequence[Any]) -> bool:
    """A dict argument against allowed dicts (each key's allowed values a list): every
    key known, each value among its allowed ones, every key left out optional."""
    if not isinstance(value, dict):
        return False
    for want in allowed:
        if not isinstance(want, dict):
            continue
        known = all(k in want and isinstance(want[k], list)
                    and _standard(v) in _standard_list(want[k]) for k, v in value.items())
        if known and all(k in value or "" in vs for k, vs in want.items()):
            return True
    return False


def _dicts_ok(value: Sequence[Any], allowed: Sequence[Any]) -> bool:
    """A list of dicts against allowed lists of dicts, item by item in order."""
    return any(len(value) == len(want)
               and all(_dict_ok(v, [w]) for v, w in zip(value, want, strict=True))
               for want in _lists(allowed))
