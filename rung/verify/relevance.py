"""``tool_relevance``: does the called tool fit what the user asked for at all?

Small models call a tool when none fits (BFCL irrelevance, published: Qwen2.5-0.5B 16%
right). This verifier rejects such a call without a model: it compares the words of the
user's task (the last user message, as :mod:`rung.routing.steps` finds it) with the words
of the called tool (its name split on ``_ . camelCase``, its description, its parameters'
names, descriptions and string enum values). The **score** of a call is the sum, over the
word stems both share, of their IDF among tool texts (:mod:`rung.verify.relevance_vocab`,
generated from the BFCL dev split's tools): sharing "retrieve" or "name" (in a third of
all tools) counts for little, sharing "triangle" for a lot. A call scoring below
``min_score`` is rejected, so the cascade escalates it. Cost: about 0.1 ms a verdict (a
tool's words are cached; an agent offers the same tools at every step).

Measured on the BFCL dev split, no model run (``.venv/bin/python bench/tool_relevance.py``,
13 s): right calls = (question, each ground-truth function) of the 8 categories with
answers (1,892), irrelevant calls = (question, each offered function) of irrelevance (168)
and live_irrelevance (1,403). AUC 0.899 (questions in a non-Latin script count as
accepted; 0.933 on the rest; a plain count of shared stems: 0.893). At thresholds chosen
by 5-fold cross-validation grouped by item (IDF from the training folds' tools; the
highest threshold rejecting at most 3% of the training folds' right calls), held out:
2.6% of right calls rejected (simple_python 1.1%, multiple 1.4%, parallel 0%,
parallel_multiple 0%, live_simple 6.4%, live_multiple 4.1%), 58.3% of irrelevance and
67.8% of live_irrelevance calls rejected. At a 5% target: 4.8% / 61.3% / 72.9%, little
more caught for twice the escalations, hence the 3% target. The same choice on the whole
split gives 4.295; the default ``min_score`` 4.25 is that rounded down (below a tie of
many right calls sharing one common word).

Where it abstains (accepts): no call, a call to a tool not offered (``tool_schema``'s
business), a task with no letters or mostly in a non-Latin script (Chinese, Korean,
Thai...: no words to share with English tool texts), and later steps of an agent's loop
(a call after a tool result may follow from that result, not from the task's words; only
first steps are measured). What it cannot see: synonyms ("film" for a tool about movies)
and near misses that share the right words ("triangle's height" vs a BMI tool's height);
the measured rates include both.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rung.routing.steps import read_step
from rung.types import Answer, ChatRequest, ToolCall, ToolSpec, Verdict
from rung.verify.base import Generate

DEFAULT_MIN_SCORE = 4.25

# Function words and the filler of requests and schema descriptions; the IDF takes care
# of words common among tools ("retrieve", "name"), these never carry a topic.
_STOPWORDS = """
a an the and or of to in on for with by from at as is are be been was were it its this
that these those i me my we our you your he she they them their what which who whom how
when where why can could would should will shall may might do does did done please give
get find tell show let make use using also just into about than then there here if else
not no yes all any some each every one two three four five ten new given specified
specific based provided default optional required value values string integer number
list type eg etc such other same more most up out so via per
"""
STOPWORDS = frozenset(_STOPWORDS.split())

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")


def stem(word: str) -> str:
    """A light stem of a lowercase word, Porter-like at the ends only: plurals and
    -ing/-ed cut, a final y made i and a final e dropped, so "movies" meets "movie",
    "cities" "city" and "booking" "book"; no more (a real stemmer's mistakes cost more
    than the few pairs it would join here)."""
    if len(word) > 4 and (word.endswith("ies") or word.endswith("es") and word[-3] in "sxz"):
        word = word[:-2]  # cities -> citi (y -> i below), boxes -> box
    elif len(word) > 3 and word.endswith("s") and word[-2] not in "su":
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == "y" and word[-2] not in "aeiou":
        word = word[:-1] + "i"
    elif len(word) > 4 and word[-1] == "e":
        word = word[:-1]
    return word


def words(text: str) -> frozenset[str]:
    """The content-word stems of ``text``: split on non-letters, ``_`` and camelCase,
    lowercased, stopwords, single letters and numbers dropped."""
    out = set()
    for w in _WORD.findall(_CAMEL.sub(" ", text)):
        w = w.lower()
        if len(w) > 1 and not w.isdigit() and w not in STOPWORDS:
            out.add(stem(w))
    return frozenset(out)


def readable(text: str) -> bool:
    """Whether ``text`` has letters and at least half of them are Latin-script (where
    word overlap with English tool texts means something)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and 2 * sum(ord(c) < 0x250 for c in letters) >= len(letters)


def tool_text(tool: ToolSpec) -> str:
    """Everything a tool says about what it is for: name, description, and its
    parameters' names, descriptions and string enum values, nested ones included."""
    parts = [tool.name.replace(".", " "), tool.description or ""]

    def walk(schema: Any) -> None:
        if not isinstance(schema, dict):
            return
        parts.append(str(schema.get("description") or ""))
        enum = schema.get("enum")
        if isinstance(enum, list):
            parts.extend(v for v in enum if isinstance(v, str))
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for key, sub in properties.items():
                parts.append(str(key))
                walk(sub)
        walk(schema.get("items"))

    walk(tool.parameters or {})
    return " ".join(parts)


def tool_words(tool: ToolSpec) -> frozenset[str]:
    """:func:`words` of :func:`tool_text`, cached by the tool's content."""
    return _tool_words(tool.name, tool.description or "",
                       json.dumps(tool.parameters or {}, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _tool_words(name: str, description: str, parameters: str) -> frozenset[str]:
    return words(tool_text(ToolSpec(name, description, json.loads(parameters))))


@dataclass(frozen=True)
class Vocabulary:
    """Document frequencies of word stems among ``tools`` tool texts. Words seen in
    fewer than ``min_df`` tools are left out and weigh as the rarest."""

    tools: int
    df: Mapping[str, int]

    @classmethod
    def of(cls, tools: Iterable[ToolSpec], *, min_df: int = 3) -> Vocabulary:
        """The vocabulary of distinct tools (by name and description)."""
        seen = {(t.name, t.description): tool_words(t) for t in tools}
        df = Counter(w for ws in seen.values() for w in ws)
        return cls(len(seen), {w: n for w, n in sorted(df.items()) if n >= min_df})

    def weight(self, word: str) -> float:
        """Smoothed IDF: 1 + ln((N + 1) / (df + 1)), df 1 for a word left out."""
        return 1.0 + math.log((self.tools + 1) / (self.df.get(word, 1) + 1))


@functools.cache
def default_vocabulary() -> Vocabulary:
    """The shipped vocabulary (generated by ``bench/tool_relevance.py --write-vocab``)."""
    from rung.verify.relevance_vocab import DF, TOOLS

    return Vocabulary(TOOLS, DF)


def relevance(task: str, tool: ToolSpec, vocabulary: Vocabulary) -> float | None:
    """The IDF mass of the word stems ``task`` and ``tool`` share; None when the task
    is not :func:`readable` (no judgement)."""
    if not readable(task):
        return None
    shared = words(task) & tool_words(tool)
    return sum(vocabulary.weight(w) for w in shared)


class ToolRelevanceVerifier:
    """Escalate a first-step call whose tool shares too little with the user's task."""

    name = "tool_relevance"
    needs_logprobs = False

    def __init__(self, *, min_score: float = DEFAULT_MIN_SCORE,
                 vocabulary: Vocabulary | None = None) -> None:
        self.min_score = min_score
        self._vocabulary = vocabulary

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        return self.judge(request, answer.tool_calls)

    def judge(self, request: ChatRequest, calls: Sequence[ToolCall]) -> Verdict:
        """The verdict on ``calls`` made in answer to ``request`` (no generation: also
        what an evaluation records for offline replay)."""
        if not request.tools or not calls:
            return Verdict(self.name, 0.0, True, "no call")
        step = read_step(request)
        if step.step:
            return Verdict(self.name, 0.5, True, "a later step of a tool loop: abstain")
        vocabulary = self._vocabulary or default_vocabulary()
        tools = {t.name: t for t in request.tools}
        scored = []
        for call in calls:
            tool = tools.get(call.name)
            if tool is None:  # no such tool: tool_schema's to reject
                continue
            score = relevance(step.text, tool, vocabulary)
            if score is None:
                return Verdict(self.name, 0.5, True, "task not in a Latin script: abstain")
            scored.append((score, call.name))
        if not scored:
            return Verdict(self.name, 0.5, True, "no offered tool called: abstain")
        worst, name = min(scored)
        # 0.5 at the threshold, 1 when nothing is shared, towards 0 as more is.
        risk = self.min_score / (self.min_score + worst) if self.min_score > 0 else 0.0
        return Verdict(self.name, risk, worst >= self.min_score,
                       f"{name}: relevance {worst:.2f} (min {self.min_score:g})"[:160])
