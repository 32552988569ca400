"""rung select: the cheapest benched candidate that meets a target, and why the cheaper
ones do not; the tier it prints serves the candidate as benched."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from rung.cli.main import main
from rung.config import parse_config
from rung.select import Target, rows_of, select

BENCH: dict[str, Any] = {"dataset": "gsm8k", "models": [
    {"model": "smollm2-135m", "path": "/m/smol.gguf", "strategy": None, "n": 40,
     "accuracy": 0.025, "ci95": [0.004, 0.129], "seconds": 40.0, "peak_rss_mb": 300.0},
    {"model": "qwen2.5-coder-0.5b", "path": "/m/q05.gguf", "strategy": None, "n": 40,
     "accuracy": 0.25, "ci95": [0.142, 0.402], "seconds": 120.0, "peak_rss_mb": 700.0},
    {"model": "qwen2.5-coder-0.5b+sc8", "path": "/m/q05.gguf", "strategy": "sc8", "n": 40,
     "accuracy": 0.35, "ci95": [0.221, 0.505], "seconds": 600.0, "peak_rss_mb": 720.0},
    {"model": "qwen2.5-coder-1.5b", "path": "/m/q15.gguf", "strategy": None, "n": 40,
     "accuracy": 0.45, "ci95": [0.307, 0.602], "seconds": 400.0, "peak_rss_mb": 1900.0},
    {"model": "broken", "error": "worker exited with status 1"},
]}


@pytest.mark.parametrize(("target", "chosen", "rejected"), [
    (Target(min_accuracy=0.2), "qwen2.5-coder-0.5b", ["smollm2-135m"]),
    (Target(min_accuracy=0.3), "qwen2.5-coder-1.5b",
     ["smollm2-135m", "qwen2.5-coder-0.5b"]),  # the 1.5B is cheaper than 0.5B+sc8 here
    (Target(min_accuracy=0.3, max_mb=1000), "qwen2.5-coder-0.5b+sc8",
     ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]),
    (Target(min_accuracy=0.2, lower_bound=True), "qwen2.5-coder-1.5b",
     ["smollm2-135m", "qwen2.5-coder-0.5b"]),
    (Target(max_ms=2000), "smollm2-135m", []),
    (Target(min_accuracy=0.9), None, ["smollm2-135m", "qwen2.5-coder-0.5b",
                                      "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b+sc8"]),
])
def test_the_cheapest_that_meets_the_target(target: Target, chosen: str | None,
                                            rejected: list[str]) -> None:
    choice = select(rows_of(BENCH), target)
    assert (choice.chosen.name if choice.chosen else None) == chosen
    assert [r.name for r, _ in choice.rejected] == rejected
    assert all(why for _, why in choice.rejected)


def test_the_cli_prints_the_reasons_and_a_tier_that_parses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bench.json"
    f.write_text(json.dumps(BENCH))
    assert main(["select", str(f), "--min-accuracy", "0.3", "--max-mb", "1000"]) == 0
    out = capsys.readouterr().out
    assert "rejected qwen2.5-coder-0.5b (3000 ms/answer, 700 MB): accuracy 0.250 < 0.300" in out
    assert "peak RSS 1900 MB > 1000" in out
    tier = tomllib.loads(out[out.index("[[tiers]]"):])["tiers"][0]
    assert tier["effort"] == {"high": "sc:8"} and tier["effort_default"] == "high"
    parse_config({"tiers": [tier]})  # the printed tier is a valid config
    assert main(["select", str(f), "--min-accuracy", "0.99"]) == 1
    assert main(["select", str(f)]) == 1  # no target: one line on stderr
    assert "give a target" in capsys.readouterr().err
