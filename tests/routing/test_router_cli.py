"""``rung router train`` then ``rung router score``, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rung.cli.main import main

REPO = Path(__file__).parents[2]
DATA = REPO.parent / "shared/data/routellm"


@pytest.fixture(scope="module")
def router_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("router") / "router.npz"
    rc = main(["router", "train", "--data", str(DATA), "--benchmark", "gsm8k", "--out", str(out)])
    assert rc == 0 and out.is_file()
    return out


def test_score_round_trip(router_file: Path) -> None:
    prompts = ["What is 2 + 2?", "A farmer has 3 fields of 12.5 acres; he sells 40%.", "hi"]
    stdin = "".join(json.dumps({"prompt": p}) + "\n" for p in prompts)
    proc = subprocess.run(
        [sys.executable, "-m", "rung.cli.main", "router", "score", str(router_file)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(prompts)
    scores = [json.loads(line)["score"] for line in lines]
    assert all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("not json\n", "line 1: not JSON"), ('{"text": "x"}\n', "field 'prompt'")],
)
def test_score_bad_input_is_one_line(router_file: Path, stdin: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rung.cli.main", "router", "score", str(router_file)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("rung: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_score_rejects_a_non_router_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "x.npz"
    bogus.write_text("hello")
    assert main(["router", "score", str(bogus)]) == 1
    assert "not a rung scorer file" in capsys.readouterr().err


def test_train_rejects_unknown_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.npz"
    args = ["router", "train", "--data", str(DATA), "--benchmark", "nope", "--out", str(out)]
    assert main(args) == 1
    assert "unknown benchmark" in capsys.readouterr().err
