"""`rung eval routing --json`: the pinned output format, and honest numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rung.cli.main import main
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA / "routellm"


def test_json_interface_on_gsm8k(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "routing", "--data", str(DATA), "--benchmark", "gsm8k", "--json",
                 "--folds", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "gsm8k" and out["n"] > 800
    assert 0.6 < out["weak"] < out["strong"] < 0.9
    res = out["results"]
    for name in ("router", "heuristic", "cascade:verifier", "random", "oracle"):
        assert {"apgr", "cpt50", "cpt80"} <= set(res[name])
        assert 0 <= res[name]["cpt50"] <= res[name]["cpt80"] <= 100
    assert res["random"]["apgr"] == pytest.approx(0.5)
    assert res["router"]["apgr"] > 0.55  # cross-validated: better than random
    assert res["cascade:verifier"]["apgr"] > 0.8
    assert res["oracle"]["apgr"] > res["cascade:verifier"]["apgr"]
    lo, hi = res["router"]["apgr_ci95"]
    assert lo < res["router"]["apgr"] < hi


def test_train_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = DATA / "gsm8k" / "gsm8k_responses.csv"
    with src.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    for name, part in (("train", body[: len(body) * 2 // 3]), ("test", body[len(body) * 2 // 3:])):
        d = tmp_path / name / "gsm8k"
        d.mkdir(parents=True)
        with (d / "gsm8k_responses.csv").open("w", newline="") as f:
            csv.writer(f).writerows([header, *part])
    assert main(["eval", "routing", "--train", str(tmp_path / "train"), "--test",
                 str(tmp_path / "test"), "--benchmark", "gsm8k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "train/test split" and out["n"] == len(body) - len(body) * 2 // 3
    assert out["results"]["cascade:verifier"]["apgr"] > 0.7


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "routing", "--benchmark", "gsm8k"]) == 1
    assert "give --data" in capsys.readouterr().err
