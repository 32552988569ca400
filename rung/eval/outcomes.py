"""rung's own outcome table, in the format `rung router train` and `rung verify train`
read (RouteLLM's, with a ``columns.json`` naming the weak and strong tiers)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_outcomes(rows: Sequence[dict[str, Any]], tiers: Sequence[str], benchmark: str,
                   out: Path) -> Path | None:
    """One CSV row per item answered by every tier in ``tiers`` (cheapest first): the
    question, each tier's correctness and answer. Weak = first tier, strong = last."""
    if len(tiers) < 2:
        return None
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["target"] in tiers:
            by_item.setdefault(r["item"], {})[r["target"]] = r
    directory = out / benchmark
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{benchmark}_responses.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", *tiers, *(f"{t}_response" for t in tiers)])
        for per in by_item.values():
            if all(t in per for t in tiers):
                first = per[tiers[0]]
                w.writerow([first["question"], *(str(bool(per[t]["correct"])) for t in tiers),
                            *(response(per[t]) for t in tiers)])
    (directory / "columns.json").write_text(json.dumps({"weak": tiers[0], "strong": tiers[-1]}))
    return path


def response(row: dict[str, Any]) -> str:
    """What a row answered, as the table's text: its text, then its tool calls (if it
    made any) one per line as ``name(arguments)``, so that a verifier trained on the
    table sees the calls."""
    calls = [f"{c['function']['name']}({c['function']['arguments']})"
             for c in row.get("tool_calls") or ()]
    return "\n".join([str(row["answer"]), *calls]).strip("\n") if calls else str(row["answer"])


def answers_on(run: Path, prompts: Sequence[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """A run's answers to the questions among ``prompts`` (an outcome table's, in order):
    target -> {index in ``prompts`` -> the run's row}; failed requests are left out."""
    index = {p.strip(): i for i, p in enumerate(prompts)}
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for line in (run / "items.jsonl").read_text().splitlines():
        row = json.loads(line)
        i = index.get(str(row["question"]).strip())
        if i is not None and not row.get("error"):
            out.setdefault(str(row["target"]), {})[i] = row
    return out
