"""The learned verifier: CLI round trip, and a held-out quality gate on GSM8K."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rung.cli.main import main
from rung.routing.data import load_outcomes
from rung.routing.metrics import evaluate
from rung.verify.learned import train_verifier

REPO = Path(__file__).parents[2]
DATA = REPO.parent / "shared/data/routellm"


def test_cli_train_and_score(tmp_path: Path) -> None:
    out = tmp_path / "verifier.npz"
    args = ["verify", "train", "--data", str(DATA), "--benchmark", "gsm8k", "--out", str(out)]
    assert main(args) == 0
    pairs = [
        {
            "prompt": "Tom has 3 apples and buys 4. How many?",
            "response": "3 + 4 = <<3+4=7>>7\n#### 7",
        },
        {
            "prompt": "Tom has 3 apples and buys 4. How many?",
            "response": "3 + 4 = <<3+4=8>>8\n#### 8",
        },
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "rung.cli.main", "verify", "score", str(out)],
        input="".join(json.dumps(p) + "\n" for p in pairs),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    right, wrong = (json.loads(line)["score"] for line in proc.stdout.splitlines())
    assert 0.0 <= right < wrong <= 1.0


def test_cli_score_needs_response(tmp_path: Path) -> None:
    out = tmp_path / "verifier.npz"
    assert main(["verify", "train", "--data", str(DATA), "--out", str(out)]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "rung.cli.main", "verify", "score", str(out)],
        input='{"prompt": "x"}\n',
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "field 'response'" in proc.stderr


def test_router_file_is_not_a_verifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "router.npz"
    assert (
        main(["router", "train", "--data", str(DATA), "--benchmark", "gsm8k", "--out", str(out)])
        == 0
    )
    assert main(["verify", "score", str(out)]) == 1
    assert "expected a 'rung-verifier'" in capsys.readouterr().err


def test_verifier_beats_random_on_held_out_fold() -> None:
    rows = load_outcomes(DATA, "gsm8k")
    test = rows[::5]
    train = [r for i, r in enumerate(rows) if i % 5]
    model = train_verifier(train)
    scores = model.score_batch([r.prompt for r in test], [r.weak_response or "" for r in test])
    report = evaluate(scores, [r.weak_correct for r in test], [r.strong_correct for r in test])
    assert report.apgr > 0.7
