"""``rung prompts test``: the checks, the paired interval, and the gate end to end (the
CLI as a process, a real upstream tier on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rung.prompts.testing import Row, paired, passes
from tests.conftest import REPO, behaviour, upstream_server


@pytest.mark.parametrize(("check", "answer", "ok"), [
    ({"exact": "Paris"}, " Paris\n", True),
    ({"exact": "Paris"}, "paris", False),
    ({"regex": r"\b42\b"}, "it is 42.", True),
    ({"regex": r"\b42\b"}, "420", False),
    ({"number": "1,000"}, "so the answer is 1000", True),
    ({"number": "7"}, "The answer is 8", False),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', True),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', False),
    ({"json_schema": {"type": "object"}}, "not json", False),
    ({"judge": "big"}, "anything", None),
])
def test_checks(check: dict[str, Any], answer: str, ok: bool | None) -> None:
    assert passes(Row("r", {}, check), answer) is ok


def test_the_paired_interval() -> None:
    mean, lo, hi = paired([True] * 20, [False] * 20)
    assert mean == 1.0 and lo > 0
    mean, lo, hi = paired([True, False] * 10, [False, True] * 10)
    assert mean == 0.0 and lo < 0 < hi
    mean, lo, hi = paired([True] * 5, [True] * 5)
    assert mean == 0.0 and lo < 0 < hi  # no difference seen: not "worse"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rung.cli.main", "prompts", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_the_gate_fails_a_worse_version_and_passes_a_better_one(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'traces.db'}"
    with upstream_server() as up:
        behaviour(up).reply = None  # echoes the last user message
        cfg = tmp_path / "rung.toml"
        cfg.write_text(f'[store]\nurl = "{store}"\n[[tiers]]\nname = "up"\nbackend = '
                       f'{{ type = "openai", base_url = "{up.url}/v1", model = "m" }}\n'
                       'cost = { input_per_mtok = 1.0 }\n')
        good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
        good.write_text('[[messages]]\nrole = "user"\ncontent = "{{question}} The answer '
                        'is 42."\n')
        bad.write_text('[[messages]]\nrole = "user"\ncontent = "{{question}}"\n')
        for f in (good, bad):
            assert _cli("push", "life", "--file", str(f), "--store", store).returncode == 0
        rows = tmp_path / "rows.jsonl"
        rows.write_text("\n".join(json.dumps({"variables": {"question": f"Q{i}?"},
                                              "check": {"number": "42"}})
                                  for i in range(12)))
        out = tmp_path / "run.json"
        r = _cli("test", "life@2", "--against", "life@1", "--dataset", str(rows),
                 "--config", str(cfg), "--json", str(out))
        print(r.stdout)
        assert r.returncode == 1, r.stderr
        assert "A is worse than B" in r.stdout
        small = next(line for line in r.stdout.splitlines()
                     if line.startswith("answered by small tier"))
        assert small.split("|")[1:3] == [" 100%               ", " 100%               "]
        run = json.loads(out.read_text())
        assert run["a"]["accuracy"] == 0.0 and run["b"]["accuracy"] == 1.0
        assert run["worse"] and run["diff"]["hi"] < 0
        assert run["rows"]["a"][0]["prompt"] == {"name": "life", "version": 2, "label": None}
        r = _cli("test", "life@1", "--against", "life@2", "--dataset", str(rows),
                 "--config", str(cfg), "--limit", "5")
        assert r.returncode == 0, r.stderr
        assert "A is not worse than B" in r.stdout
        r = _cli("test", "life@1", "--dataset", str(rows), "--config", str(cfg))
        assert r.returncode == 1 and "nothing to compare" in r.stderr
