"""A run's answers matched to an outcome table's questions."""

from __future__ import annotations

import json
from pathlib import Path

from rung.eval.outcomes import answers_on


def test_answers_on_matches_questions_and_skips_failures(tmp_path: Path) -> None:
    rows = [
        {"question": " What is 2+2? ", "target": "small", "answer": "4", "error": None},
        {"question": "What is 3+3?", "target": "small", "answer": "", "error": "timeout"},
        {"question": "What is 2+2?", "target": "big", "answer": "4", "error": None},
        {"question": "Not in the table", "target": "big", "answer": "x", "error": None},
    ]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = answers_on(tmp_path, ["What is 3+3?", "What is 2+2?"])
    assert sorted(got) == ["big", "small"]
    assert list(got["small"]) == [1] and got["small"][1]["answer"] == "4"
    assert list(got["big"]) == [1]
