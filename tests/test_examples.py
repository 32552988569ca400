"""The example configs shipped in examples/ stay valid."""

from pathlib import Path

import pytest

from rung.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_is_valid(path: Path) -> None:
    cfg = load_config(path, environ={"UPSTREAM_KEY": "x", "WEAK_KEY": "x", "STRONG_KEY": "x"})
    assert len(cfg.tiers) >= 2


def test_ladder_has_three_local_tiers() -> None:
    cfg = load_config(EXAMPLES[0].parent / "ladder.toml")
    assert [t.backend.type for t in cfg.tiers] == ["llama"] * 3
