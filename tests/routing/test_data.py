"""Loading RouteLLM's real outcome tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from rung.errors import ConfigError
from rung.routing.data import load_outcomes, parse_benchmarks

DATA = Path(__file__).parents[2].parent / "shared/data/routellm"


def test_gsm8k_rows_and_contamination() -> None:
    rows = load_outcomes(DATA, "gsm8k")
    assert len(rows) == 909  # 917 in the dev split, less 8 contaminated prompts
    assert all(r.weak_response for r in rows)
    assert not any("Janet’s ducks" in r.prompt for r in rows)


def test_mmlu_subjects() -> None:
    rows = load_outcomes(DATA, "mmlu")
    assert len(rows) == 9914
    assert len({r.subject for r in rows}) == 57
    assert all(r.weak_response is None for r in rows)
    assert sum(r.gain == 1 for r in rows) > sum(r.gain == -1 for r in rows)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("mmlu", ("mmlu",)), ("MMLU, gsm8k", ("mmlu", "gsm8k")), ("gsm8k,", ("gsm8k",))],
)
def test_parse_benchmarks(spec: str, expected: tuple[str, ...]) -> None:
    assert parse_benchmarks(spec) == expected


@pytest.mark.parametrize("spec", ["", "hellaswag", "mmlu,mt-bench"])
def test_parse_benchmarks_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_benchmarks(spec)


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_outcomes(tmp_path, "gsm8k")
