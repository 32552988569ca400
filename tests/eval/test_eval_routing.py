"""`rung eval routing --json`: the pinned output format, and honest numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rung.cli.main import main
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA / "routellm"


BASELINE = Path(__file__).resolve().parents[2] / "eval" / "baselines" / "gsm8k-routing.json"


def test_json_interface_on_gsm8k_and_the_ci_gate(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own regression gate: the deterministic 5-fold GSM8K evaluation must
    not fall below the stored baseline (eval/baselines/gsm8k-routing.json)."""
    assert main(["eval", "routing", "--data", str(DATA), "--benchmark", "gsm8k",
                 "--json"]) == 0
    raw = capsys.readouterr().out
    out = json.loads(raw)
    current = tmp_path / "current.json"
    current.write_text(raw)
    assert main(["eval", "gate", "--baseline", str(BASELINE), "--current", str(current)]) == 0
    assert "no metric fell" in capsys.readouterr().out
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


@pytest.mark.parametrize(("change", "failing"), [
    ({}, []),
    ({"apgr": -0.005}, []),  # within tolerance
    ({"apgr": -0.05}, ["router.apgr"]),
    ({"cpt50": +3.0}, ["router.cpt50"]),  # lower is better for CPT
    ({"cpt50": -3.0, "apgr": +0.1}, []),  # improvements pass
])
def test_gate_rules(change: dict[str, float], failing: list[str]) -> None:
    from rung.eval.gate import regressions

    base = {"benchmark": "b", "results": {"router": {"apgr": 0.6, "cpt50": 30.0}}}
    cur = {"benchmark": "b", "results": {"router": {
        k: v + change.get(k, 0.0) for k, v in base["results"]["router"].items()}}}
    assert [p.split(":")[0] for p in regressions(base, cur)] == failing
    assert regressions(base, {"benchmark": "other"})


def test_oof_gain_follows_an_informative_feature() -> None:
    import numpy as np

    from rung.eval.routing import oof_gain

    rng = np.random.default_rng(0)
    gain = rng.choice([-1, 0, 1], size=300, p=[0.1, 0.6, 0.3]).astype(np.int64)
    x = np.column_stack([gain + rng.normal(0, 0.3, 300), np.zeros(300)])  # + a constant
    out = oof_gain(x, gain)
    assert out.shape == (300,) and np.all(np.abs(out) <= 1)
    assert out[gain == 1].mean() > 0.5 and out[gain == -1].mean() < 0
