#!/usr/bin/env python3
"""Benchmark: the turn after a tool result, on local tiers, with and without the hint.

    .venv/bin/python bench/tool_result_turn.py                        # the Qwen ladder
    .venv/bin/python bench/tool_result_turn.py --models smollm2-135m

An agent sends the tool's result back and asks for the next turn (``tool_choice`` auto):
the model should answer the question from the result, or make the next call when one is
still needed. Small local models often do neither: they call the tool again. Each of the
hand-written conversations below ends with tool results and names what a right next turn
holds (text with one of the given values, or the given next call). Each model answers
each one twice, greedy, in process: with the backend's ``after_tool_result`` turn and
without it. Prints, per model and setting, the right turns and how the others went
(text without the value, JSON that is no valid call, a wrong call, cut at
``--max-tokens``), and the compute seconds; then the ladder of the first and last model
as examples/tools.toml runs it (the first model's turn unless ``tool_schema`` rejects it,
then the last model's, at both models' compute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from dataclasses import dataclass
from typing import Any

from rung.backends.llama import LlamaBackend
from rung.config import AFTER_TOOL_RESULT, CatalogConfig, LlamaBackendConfig
from rung.tools.parse import begins_call
from rung.types import ChatRequest, Message, ToolCall, ToolSpec
from rung.verify.tools import ToolSchemaVerifier


def _tool(fn: str, description: str, /, **props: str) -> ToolSpec:
    kinds = {k: ("number" if v.startswith("#") else "string") for k, v in props.items()}
    return ToolSpec(name=fn, description=description, parameters={
        "type": "object", "required": list(props),
        "properties": {k: {"type": kinds[k], "description": v.lstrip("#")}
                       for k, v in props.items()}})


CONVERT = _tool("convert_temperature", "Convert a temperature in Celsius to another unit.",
                celsius="#The temperature in degrees Celsius.",
                to='The unit to convert to, "fahrenheit" or "kelvin".')
TEMPERATURE = _tool("get_temperature", "The current temperature of a city in degrees Celsius.",
                    city="The city's name.")
WEATHER = _tool("get_weather", "Today's weather of a city: the sky and the temperature.",
                city="The city's name.")
FLIGHTS = _tool("search_flights", "Flights between two cities on a date, with their prices "
                "in euros.", origin="Departure city.", destination="Arrival city.",
                date="The date, YYYY-MM-DD.")
MULTIPLY = _tool("multiply", "Multiply two numbers.", a="#The first factor.",
                 b="#The second factor.")
STOCK = _tool("get_stock_price", "The last traded price of a stock in US dollars.",
              symbol="The ticker symbol.")
FIND_USER = _tool("find_user", "Look a customer up by name; returns the customer's record.",
                  name="The customer's full name.")
ORDERS = _tool("get_orders", "The orders a customer placed.", user_id="#The customer's id.")
TRANSLATE = _tool("translate", "Translate a text into another language.",
                  text="The text.", target="The target language.")
TIME = _tool("get_time", "The current local time in a time zone.",
             timezone="An IANA time zone, e.g. Europe/Paris.")


@dataclass(frozen=True)
class Case:
    name: str
    tools: tuple[ToolSpec, ...]
    question: str
    steps: tuple[tuple[tuple[str, dict[str, Any], str], ...], ...]  # (call, args, result)
    says: tuple[str, ...] = ()  # a right text answer holds one of these
    calls: str | None = None  # ...or a right next turn calls this function

    def request(self, max_tokens: int) -> ChatRequest:
        msgs = [Message("system", "You are a helpful assistant. Answer in one sentence."),
                Message("user", self.question)]
        n = 0
        for step in self.steps:
            made = []
            for fn, args, _ in step:
                n += 1
                made.append(ToolCall(f"call_{n}", fn, json.dumps(args)))
            msgs.append(Message("assistant", "", tool_calls=tuple(made)))
            msgs += [Message("tool", result, tool_call_id=c.id)
                     for c, (_, _, result) in zip(made, step, strict=True)]
        return ChatRequest(messages=tuple(msgs), tools=self.tools,
                           temperature=0.0, max_tokens=max_tokens)


CASES = (
    Case("convert", (CONVERT,), "What is 24 C in Fahrenheit?",
         ((("convert_temperature", {"celsius": 24, "to": "fahrenheit"}, "75.2"),),),
         says=("75.2",)),
    Case("then-convert", (TEMPERATURE, CONVERT),
         "What is the temperature in Paris right now, in Fahrenheit?",
         ((("get_temperature", {"city": "Paris"}, "24"),),),
         says=("75.2",), calls="convert_temperature"),
    Case("weather", (WEATHER,), "What's the weather like in Oslo today?",
         ((("get_weather", {"city": "Oslo"}, '{"sky": "light rain", "celsius": 7}'),),),
         says=("rain",)),
    Case("flights", (FLIGHTS,), "What is the cheapest flight from Berlin to Rome on "
         "2027-05-03?",
         ((("search_flights", {"origin": "Berlin", "destination": "Rome",
                               "date": "2027-05-03"},
            '[{"flight": "AZ431", "price": 129}, {"flight": "FR22", "price": 89}]'),),),
         says=("FR22",)),
    Case("multiply", (MULTIPLY,), "What is 42 times 37?",
         ((("multiply", {"a": 42, "b": 37}, "1554"),),), says=("1554", "1,554")),
    Case("stock", (STOCK,), "How much is one Apple share right now?",
         ((("get_stock_price", {"symbol": "AAPL"}, "189.43"),),), says=("189.43",)),
    Case("user-id", (FIND_USER, ORDERS), "What is Dana Ruiz's customer id?",
         ((("find_user", {"name": "Dana Ruiz"},
            '{"id": 7731, "name": "Dana Ruiz", "city": "Lyon"}'),),), says=("7731",)),
    Case("then-orders", (FIND_USER, ORDERS), "How many orders has Dana Ruiz placed?",
         ((("find_user", {"name": "Dana Ruiz"},
            '{"id": 7731, "name": "Dana Ruiz", "city": "Lyon"}'),),), calls="get_orders"),
    Case("orders", (FIND_USER, ORDERS), "How many orders has Dana Ruiz placed?",
         ((("find_user", {"name": "Dana Ruiz"},
            '{"id": 7731, "name": "Dana Ruiz", "city": "Lyon"}'),),
          (("get_orders", {"user_id": 7731},
            ('[{"order": "A-1001", "total": 35.5}, {"order": "A-1017", "total": 12.0}, '
             '{"order": "A-1040", "total": 80.25}]')),),),
         says=("3", "three")),
    Case("two-cities", (WEATHER,), "Is it warmer in Madrid or in Dublin today?",
         ((("get_weather", {"city": "Madrid"}, '{"sky": "sunny", "celsius": 21}'),
           ("get_weather", {"city": "Dublin"}, '{"sky": "cloudy", "celsius": 11}')),),
         says=("Madrid",)),
    Case("translate", (TRANSLATE,), "How do I say 'good morning' in French?",
         ((("translate", {"text": "good morning", "target": "French"}, "Bonjour"),),),
         says=("Bonjour",)),
    Case("time", (TIME,), "What time is it in Tokyo?",
         ((("get_time", {"timezone": "Asia/Tokyo"}, "14:05"),),), says=("14:05", "2:05")),
)


def outcome(case: Case, text: str, calls: list[str], finish: str | None) -> str:
    if calls:
        return "right" if case.calls in calls else "call"
    if finish == "length":
        return "cut"
    if begins_call(text) or text.lstrip().startswith("{"):
        return "json"  # a malformed or echoed call, not an answer
    low = text.lower()
    return "right" if any(s.lower() in low for s in case.says) else "text"


@dataclass(frozen=True)
class Turn:
    outcome: str
    accepted: bool  # by tool_schema, the ladder's verifier (examples/tools.toml)
    compute_s: float


async def run(model: str, hint: str | None, max_tokens: int, verbose: bool) -> list[Turn]:
    cfg = LlamaBackendConfig(model=model, n_ctx=4096, after_tool_result=hint)
    backend = LlamaBackend("bench", cfg, catalog=CatalogConfig())
    await backend.start()
    turns = []
    try:
        for case in CASES:
            request = case.request(max_tokens)
            text, finish, compute = "", None, 0.0
            calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
            async for c in backend.stream(request):  # its calls already read out of the text
                text += c.text
                for d in c.tool_calls:
                    got = calls.setdefault(d.index, ["", "", ""])
                    got[0] += d.id or ""
                    got[1] += d.name or ""
                    got[2] += d.arguments or ""
                finish = c.finish_reason or finish
                compute += c.compute_s or 0.0
            made = [ToolCall(*calls[i]) for i in sorted(calls)]
            verdict = ToolSchemaVerifier().judge(request, made, text, finish)
            turn = Turn(outcome(case, text, [m.name for m in made], finish), verdict.accept,
                        compute)
            turns.append(turn)
            if verbose:
                print(f"  {model} {'hint' if hint else 'none'} {case.name}: {turn.outcome} "
                      f"({verdict.detail}) {[m.name for m in made] or text!r}"[:200])
    finally:
        await backend.aclose()
    return turns


def row(label: str, hint: str | None, turns: list[Turn]) -> str:
    n = {k: sum(t.outcome == k for t in turns) for k in ("right", "text", "json", "call", "cut")}
    return (f"{label:30} {'on' if hint else 'off':5} {n['right']:>3}/{len(turns):<2} "
            f"{n['text']:>5} {n['json']:>5} {n['call']:>5} {n['cut']:>4} "
            f"{sum(t.compute_s for t in turns):>10.1f}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b",
                                                     "qwen2.5-coder-1.5b"])
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--verbose", action="store_true", help="print every answer")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; "
          f"{len(CASES)} conversations, greedy, max_tokens {args.max_tokens}")
    print(f"{'tier':30} {'hint':5} {'right':>6} {'text':>5} {'json':>5} {'call':>5} "
          f"{'cut':>4} {'compute s':>10}")
    runs: dict[tuple[str, str | None], list[Turn]] = {}
    for model in args.models:
        for hint in (None, AFTER_TOOL_RESULT):
            runs[model, hint] = await asyncio.wait_for(
                run(model, hint, args.max_tokens, args.verbose), timeout=1800)
            print(row(model, hint, runs[model, hint]), flush=True)
    if len(args.models) > 1:  # the first model, the last one when tool_schema rejects
        first, last = args.models[0], args.models[-1]
        for hint in (None, AFTER_TOOL_RESULT):
            ladder = [a if a.accepted else Turn(b.outcome, b.accepted, a.compute_s + b.compute_s)
                      for a, b in zip(runs[first, hint], runs[last, hint], strict=True)]
            up = sum(not a.accepted for a in runs[first, hint])
            print(row(f"ladder (tool_schema, {up} up)", hint, ladder))


if __name__ == "__main__":
    asyncio.run(main())
