"""A request as the router sees it: the text it scores, the features beside that text,
and the key the steps of one conversation share.

An agent sends one request per step of its loop: a system prompt, the tools it offers,
the user's task, then assistant turns that call tools and ``tool`` turns with their
results. What decides whether a step needs a stronger tier is the task, not the output
of the last tool (JSON, a file, a web page: often long, sometimes megabytes). So:

- the **scored text** is the last user message (the task being worked on); without one,
  the system prompt (an agent may be told its task there); never a tool result or an
  assistant's tool-call turn. It is cut at :data:`MAX_PROMPT_CHARS`. A learned router is
  trained on single user prompts, so this keeps its feature space: every step of a task
  gets the score its task would get as a question. The system prompt is not added to the
  text: an agent's is long and the same for every task, which would lift every score
  alike and put the learned router out of its training distribution.
- the **features** beside the text: tools offered, the dialogue's turn (user messages so
  far), the step (tool rounds since the last user message), whether the last turn is a
  tool result, and the number of dialogue messages (tool traffic left out). The heuristic
  uses the tools offered and the dialogue's length (see ``rung.routing.scorers``); a
  step's depth deliberately does not move the score, since the task is the same at every
  step: what an earlier step learned (it had to escalate) is carried by stickiness.
- the **conversation key** (:func:`conversation_key`) hashes what every step of one
  conversation repeats: the system prompt, the tools offered (names and parameter
  schemas) and the first user message.

Reading a request is linear in its messages and never copies more than
:data:`MAX_PROMPT_CHARS` of text, so a step carrying megabytes of tool output costs
microseconds here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from rung.types import ChatRequest, Message

# Scoring reads at most this much of a prompt: 3x the longest training prompt (MMLU,
# 4,868 characters), so no prompt like those it learned from is cut, while a prompt of
# megabytes costs milliseconds, not seconds (regexes and tokenizers hold the GIL, so even
# a scorer run in a thread would stall the server's event loop on a 7.5 MB prompt).
MAX_PROMPT_CHARS = 16_384


def _tool_traffic(m: Message) -> bool:
    """A tool result, or an assistant turn that calls tools: the loop, not the dialogue."""
    return m.role == "tool" or (m.role == "assistant" and bool(m.tool_calls))


def prompt_text(request: ChatRequest) -> str:
    """What routers look at, uncut: the last user message (the question or task being
    worked on); without one, the system prompt; without that, the last message that is
    not tool traffic; else ""."""
    messages = request.messages
    for m in reversed(messages):
        if m.role == "user":
            return m.content
    for m in messages:
        if m.role == "system":
            return m.content
    for m in reversed(messages):
        if not _tool_traffic(m):
            return m.content
    return ""


@dataclass(frozen=True, slots=True)
class Step:
    """One request as a step of its conversation (what :func:`read_step` finds)."""

    text: str  # the scored text, at most MAX_PROMPT_CHARS
    tools: int  # tools offered
    turn: int  # user messages so far: 1 for the first question
    step: int  # assistant tool-call turns since the last user message: 0 for a fresh turn
    after_tool: bool  # the last message is a tool result
    dialogue: int  # messages that are not tool traffic (system, user, plain assistant)
    # The request carries an earlier assistant turn: a later step of a conversation, not
    # its opening request.
    continues: bool


def read_step(request: ChatRequest) -> Step:
    """The scored text and the features of ``request``."""
    messages = request.messages
    turn = sum(1 for m in messages if m.role == "user")
    step = 0
    for m in reversed(messages):
        if m.role == "user":
            break
        if m.role == "assistant" and m.tool_calls:
            step += 1
    return Step(text=prompt_text(request)[:MAX_PROMPT_CHARS], tools=len(request.tools),
                turn=turn, step=step,
                after_tool=bool(messages) and messages[-1].role == "tool",
                dialogue=sum(1 for m in messages if not _tool_traffic(m)),
                continues=any(m.role == "assistant" for m in messages))


def conversation_key(request: ChatRequest) -> str:
    """A hash of what every step of one conversation repeats: the system prompt (every
    system message before the first user message), the tools offered (names and
    parameter schemas, in any order) and the first user message. Two runs of the same
    task with the same agent share a key; that is as close as a stateless API gets."""
    h = hashlib.sha256()

    def part(tag: bytes, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        h.update(tag + len(data).to_bytes(8, "big") + data)

    first_user = ""
    for m in request.messages:
        if m.role == "user":
            first_user = m.content
            break
        if m.role == "system":
            part(b"s", m.content)
    for t in sorted(request.tools, key=lambda t: t.name):
        part(b"t", t.name)
        part(b"p", json.dumps(t.parameters, sort_keys=True, ensure_ascii=False))
    part(b"u", first_user)
    return h.hexdigest()
