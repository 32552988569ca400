"""``rung drift report`` and ``drift_status`` on real SQLite stores of RouteLLM prompts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from rung.cli.drift import register
from rung.drift.report import drift_status
from rung.routing.data import load_outcomes
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace
from tests.conftest import REPO

DATA = REPO.parent / "shared" / "data" / "routellm"
N = 120  # traces per window
T0 = 1_700_000_000.0
REF = (T0, T0 + 1000)  # reference window; the recent one is [T0 + 1000, T0 + 2000)

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/routellm")


def _prompts(benchmark: str) -> list[str]:
    return [o.prompt for o in load_outcomes(DATA, benchmark)]


def _trace(i: int, when: float, prompt: str | None, rng: np.random.Generator) -> Trace:
    score = float(rng.beta(2, 5))
    v = float(rng.beta(2, 5))
    return Trace(
        id=f"t{i}",
        time=when,
        model="rung",
        tier="small",
        escalated=score > 0.5,
        input_tokens=len(prompt or "x" * 400) // 4,
        output_tokens=40,
        score=score,
        messages=None
        if prompt is None
        else [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}],
        route={
            "reason": "test",
            "score": score,
            "attempts": [
                {
                    "tier": "small",
                    "outcome": "accepted",
                    "verdicts": [{"name": "judge", "score": v, "accept": v < 0.5, "detail": ""}],
                }
            ],
        },
    )


def _store(path: Path, reference: list[str | None], recent: list[str | None]) -> str:
    rng = np.random.default_rng(0)
    store = SqliteStore(path)
    try:
        for i, p in enumerate(reference):
            store.write_sync(_trace(i, T0 + i, p, rng))
        for i, p in enumerate(recent):
            store.write_sync(_trace(10_000 + i, T0 + 1000 + i, p, rng))
    finally:
        store.close()
    return f"sqlite:///{path}"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["drift", "report", *argv])
    return int(args.func(args))


def _window_args(url: str) -> list[str]:
    return [
        "--store",
        url,
        "--reference-since",
        str(REF[0]),
        "--reference-until",
        str(REF[1]),
        "--recent-since",
        str(REF[1]),
        "--recent-until",
        str(REF[1] + 1000),
    ]


def test_gsm8k_after_mmlu_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    mmlu, gsm = _prompts("mmlu"), _prompts("gsm8k")
    url = _store(
        tmp_path / "t.db",
        [mmlu[int(i)] for i in rng.choice(len(mmlu), N, False)],
        [gsm[int(i)] for i in rng.choice(len(gsm), N, False)],
    )
    html = tmp_path / "r.html"
    assert _run(*_window_args(url), "--html", str(html)) == 0
    out = capsys.readouterr().out
    assert "overall: DRIFT" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("input.")}
    assert lines["input.classifier_auc"].endswith("DRIFT")
    assert lines["input.mmd_rbf"].endswith("DRIFT")
    page = html.read_text()
    assert (
        page.count("<svg") == 2
        and "<script" not in page
        and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_two_samples_of_the_same_mix_are_not_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    mmlu = _prompts("mmlu")
    idx = rng.choice(len(mmlu), 2 * N, replace=False)
    url = _store(
        tmp_path / "t.db", [mmlu[int(i)] for i in idx[:N]], [mmlu[int(i)] for i in idx[N:]]
    )
    assert _run(*_window_args(url), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["features"] == "text" and not report["drifted"]
    assert {t["name"] for t in report["tests"]} == {
        "input.classifier_auc",
        "input.mmd_rbf",
        "routing.escalation_rate",
        "routing.score_psi",
        "routing.score_wasserstein",
        "quality.small/judge.psi",
        "quality.small/judge.wasserstein",
        "quality.small/judge.reject_rate",
    }


def test_too_few_traces_exits_2_and_says_how_many(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mmlu = _prompts("mmlu")
    url = _store(tmp_path / "t.db", mmlu[:N], mmlu[N : N + 10])
    assert _run(*_window_args(url)) == 2
    assert "need at least 50" in capsys.readouterr().out


def test_redacted_traces_fall_back_to_numeric_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _store(tmp_path / "t.db", [None] * N, [None] * N)
    assert _run(*_window_args(url), "--json") == 0
    assert json.loads(capsys.readouterr().out)["features"] == "numeric"


def test_drift_status_is_a_small_dict(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    mmlu, gsm = _prompts("mmlu"), _prompts("gsm8k")
    url = _store(
        tmp_path / "t.db",
        [mmlu[int(i)] for i in rng.choice(len(mmlu), N, False)],
        [gsm[int(i)] for i in rng.choice(len(gsm), N, False)],
    )
    store = SqliteStore(Path(url.removeprefix("sqlite:///")))
    try:
        status = drift_status(
            store, reference_s=1000, recent_s=1000, threshold_p=0.05, now=REF[1] + 1000
        )
    finally:
        store.close()
    assert status["drifted"] and status["enough"]
    assert status["n_reference"] == status["n_recent"] == N
    assert status["tests"]["input.mmd_rbf"]["drifted"]
    json.dumps(status)  # plain types only


def test_users_rating_answers_worse_is_quality_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same mix of prompts, but users rate the recent answers worse (POST /v1/feedback):
    flagged by the feedback tests alone."""
    from rung.store.feedback import Feedback

    rng = np.random.default_rng(2)
    mmlu = _prompts("mmlu")
    idx = rng.choice(len(mmlu), 2 * N, replace=False)
    url = _store(
        tmp_path / "t.db", [mmlu[int(i)] for i in idx[:N]], [mmlu[int(i)] for i in idx[N:]]
    )
    store = SqliteStore(Path(url.removeprefix("sqlite:///")))
    try:
        for i in range(N):  # 90% good before, 50% after
            store.add_feedback(Feedback(f"t{i}", float(rng.random() < 0.9), T0 + i + 1))
            store.add_feedback(Feedback(f"t{10_000 + i}", float(rng.random() < 0.5),
                                        T0 + 1000 + i + 1))
    finally:
        store.close()
    assert _run(*_window_args(url), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    flagged = {t["name"] for t in report["tests"] if t["drifted"]}
    assert report["drifted"] and "quality.feedback/small.reject_rate" in flagged
    assert not flagged - {"quality.feedback/small.reject_rate", "quality.feedback/small.psi",
                          "quality.feedback/small.wasserstein"}
