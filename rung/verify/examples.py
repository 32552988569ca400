"""The examples check: a code answer must reproduce the examples its prompt gives.

Coding prompts usually show what the function should return: doctest lines
(``>>> f(1)`` then ``2``) or inline ones (``f(1) == 2``, ``f(1) ➞ 2``, ``f(1) => 2``,
``f(1) -> 2``, ``assert f(1) == 2``). This verifier parses them from the request, runs the
answer's code on each call in the sandbox (:mod:`rung.sandbox`) and rejects the answer
when an example comes out different. It uses only what the user sent, never hidden tests,
and costs a subprocess (~40 ms here) instead of a model call. A prompt with no parsable
example gives no evidence and the answer is accepted. The tally comes back on a line
marked with a fresh random nonce, so an answer that prints a tally of its own is not
believed (one that reads the program file to find the nonce could be: the sandbox is
defence in depth, not a boundary).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass

from rung.sandbox import sandbox_exec
from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", flags=re.DOTALL)
_INLINE_SEP = re.compile(r"\s*(==>|=>|➞|→|->|==|returns|should return)\s*(.+)$")
_CALL_START = re.compile(r"^([A-Za-z_]\w*)\(")
_MARK = "RUNG-EXAMPLES"


@dataclass(frozen=True)
class Example:
    call: str  # a Python expression (or, with ``want`` None, a statement to run first)
    want: str | None  # the expected value as written in the prompt


@dataclass(frozen=True)
class ExamplesResult:
    total: int
    failed: int
    note: str = ""


def extract_code(text: str, prompt: str) -> str:
    """An answer's code: its last ```python block if any, else the text; if that does not
    define a function it is taken as the body that follows ``prompt``."""
    blocks = _FENCE.findall(text)
    code = blocks[-1] if blocks else text
    return code if "def " in code else prompt + code


def prompt_code(prompt: str) -> str:
    """The code a chat prompt carries: its last fenced block, else the whole prompt."""
    blocks = _FENCE.findall(prompt)
    return blocks[-1] if blocks else prompt


def parse_examples(prompt: str) -> list[Example]:
    """Doctest and inline examples in ``prompt``, in order; those whose expected value is
    not a Python literal keep its text (compared with the result's repr or str)."""
    lines = prompt.splitlines()
    out: list[Example] = []
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith(">>>"):
            call = s[3:].strip()
            i += 1
            while i < len(lines) and lines[i].strip().startswith("..."):
                call += "\n" + lines[i].strip()[3:].lstrip()
                i += 1
            want_lines = []
            while i < len(lines):
                t = lines[i].strip()
                if (not t or t.startswith((">>>", '"""', "'''"))
                        or _inline(t) is not None):
                    break
                want_lines.append(t)
                i += 1
            if want_lines and call.startswith("print(") and call.endswith(")"):
                call = call[6:-1]  # compared with str() of the value, as printed
            if call and _parses(call, "exec"):
                out.append(Example(call, " ".join(want_lines) if want_lines else None))
            continue
        ex = _inline(s)
        if ex is not None:
            out.append(ex)
        i += 1
    return [e for e in out if e.want is None or _parses(e.call, "eval")]


def _inline(line: str) -> Example | None:
    """``name(args) SEP value`` on one line (``assert`` in front allowed), or None."""
    line = line.removeprefix("assert ").strip()
    m = _CALL_START.match(line)
    if m is None or m.group(1) in {"print", "assert", "return", "def"}:
        return None
    end = _call_end(line, m.end() - 1)
    if end is None:
        return None
    sep = _INLINE_SEP.match(line[end:])
    if sep is None:
        return None
    want = sep.group(2).split("#", 1)[0].strip().rstrip(".,;").strip()
    if not _is_literal(want) and " = " in want:  # "-> 19 - 5 - 6 = 8": the final value
        want = want.rsplit(" = ", 1)[1].strip()
    if not _is_literal(want):
        return None
    return Example(line[:end], want)


def _call_end(line: str, open_at: int) -> int | None:
    """Index just past the parenthesis that closes the one at ``open_at``."""
    depth, quote = 0, ""
    for j in range(open_at, len(line)):
        c = line[j]
        if quote:
            if c == quote and line[j - 1] != "\\":
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _parses(src: str, mode: str) -> bool:
    try:
        ast.parse(src, mode=mode)
    except SyntaxError:
        return False
    return True


def _is_literal(src: str) -> bool:
    try:
        ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


_RUNNER = """
import ast as _ast, builtins as _builtins, math as _math, json as _json
def _same(got, text):
    try:
        want = _ast.literal_eval(text)
    except Exception:
        return repr(got) == text or str(got) == text
    if isinstance(want, float) or isinstance(got, float):
        try:
            return _math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
        except TypeError:
            return False
    if isinstance(want, str) and not isinstance(got, str):
        return str(got) == want or (isinstance(got, (tuple, list)) and list(got) == [want])
    if isinstance(want, (tuple, list)) and isinstance(got, (tuple, list)):
        return list(got) == list(want)
    return got == want
def _usable(call, ns):
    # A name the example uses that nothing defines: if it is a function the task asks
    # for, the answer lacks it (a failure); else the prompt's example is broken (unquoted
    # strings, another function's name) and is skipped.
    tree = _ast.parse(call)
    loads = {n.id for n in _ast.walk(tree) if isinstance(n, _ast.Name)}
    bound = {n.id for n in _ast.walk(tree) if isinstance(n, _ast.Name)
             and isinstance(n.ctx, _ast.Store)}
    for node in _ast.walk(tree):
        if isinstance(node, _ast.comprehension):
            bound |= {n.id for n in _ast.walk(node.target) if isinstance(n, _ast.Name)}
    calls = {n.func.id for n in _ast.walk(tree)
             if isinstance(n, _ast.Call) and isinstance(n.func, _ast.Name)}
    for name in loads - bound:
        if name in ns or hasattr(_builtins, name):
            continue
        if name in calls and (_REQUIRED is None or name in _REQUIRED):
            return "missing"
        return "skip"
    return "ok"
_n = sum(w is not None for _, w in _EXAMPLES)
_ns = {"__name__": "answer"}
try:
    exec(compile(_CODE, "answer.py", "exec"), _ns)
except BaseException:
    print("%(mark)s" + _json.dumps([_n, _n]))
    raise SystemExit(0)
_failed = 0
_total = 0
for _call, _want in _EXAMPLES:
    try:
        _state = _usable(_call, _ns)
        if _state == "skip":
            continue
        if _want is None:
            exec(_call, _ns)
            continue
        _total += 1
        if _state == "missing" or not _same(eval(_call, _ns), _want):
            _failed += 1
    except BaseException:
        _failed += 1 if _want is not None else 0
print("%(mark)s" + _json.dumps([_total, _failed]))
"""


def _defined(code: str) -> set[str] | None:
    """Top-level functions and classes of the prompt's code; None when it is not code."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    return {n.name for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def examples_program(code: str, examples: list[Example], *,
                     required: set[str] | None = None, mark: str = _MARK) -> str:
    """A program that runs ``code`` (as a module, not ``__main__``) and prints how many
    of ``examples`` it got right. ``required``: functions the task asks for (an example
    calling one the code lacks fails); None: every function an example calls."""
    pairs = [(e.call, e.want) for e in examples]
    req = sorted(required) if required is not None else None
    return (f"_CODE = {code!r}\n_EXAMPLES = {pairs!r}\n_REQUIRED = {req!r}\n"
            + _RUNNER % {"mark": mark})


def check_examples(prompt: str, answer: str, *, timeout_s: float = 5.0) -> ExamplesResult:
    """Run ``answer``'s code on the examples in ``prompt`` (sandboxed, blocking)."""
    examples = parse_examples(prompt)
    n = sum(e.want is not None for e in examples)
    if n == 0:
        return ExamplesResult(0, 0, "no examples")
    stub = prompt_code(prompt)
    code = extract_code(answer, stub)
    if not _parses(code, "exec"):
        return ExamplesResult(n, n, "no runnable code")
    mark = f"{_MARK}-{secrets.token_hex(8)}:"
    done = sandbox_exec(examples_program(code, examples, required=_defined(stub), mark=mark),
                        timeout_s=timeout_s)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(mark):
            total, failed = json.loads(line[len(mark):])
            return ExamplesResult(int(total), int(failed),
                                  "" if total else "no usable examples")
    return ExamplesResult(n, n, "timed out" if done.timed_out else "crashed")


class ExamplesVerifier:
    name = "examples"
    needs_logprobs = False

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        # At most one sandboxed run per core at a time: under a burst of code requests
        # the rest wait rather than fork without bound.
        self._slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))

    def _check(self, prompt: str, text: str) -> ExamplesResult:
        with self._slots:
            return check_examples(prompt, text, timeout_s=self.timeout_s)

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        result = await asyncio.to_thread(self._check, prompt, answer.text)
        if result.total == 0:
            return Verdict(self.name, 0.0, True, "no examples")
        score = result.failed / result.total
        reason = result.note or f"{result.total - result.failed}/{result.total} examples pass"
        return Verdict(self.name, round(score, 4), result.failed == 0, reason)
