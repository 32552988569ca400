"""Live evaluation: checks, the sandbox, and runs through real tiers (upstream servers on
loopback, and the embedded model), resumed after an interruption."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rung.cli.main import main
from rung.devtools.upstream import UpstreamBehaviour
from rung.eval import datasets
from rung.eval.checks import is_correct
from rung.routing.data import load_outcomes
from rung.sandbox import sandbox_run
from rung.verify.examples import extract_code
from rung.verify.final import final_number
from tests.conftest import SHARED_DATA, upstream_server

GSM8K = SHARED_DATA / "routellm" / "gsm8k" / "test.jsonl"


@pytest.mark.parametrize(("text", "number"), [
    ("so 9 * 2 = 18.\nThe answer is 18", "18"),
    ("The answer is $1,250.00 in total", "1250"),
    ("#### 42", "42"),
    ("first 3 then 7", "7"),
    ("The answer is -4.5", "-4.5"),
    ("no number", None),
])
def test_final_number(text: str, number: str | None) -> None:
    assert final_number(text) == number


def test_extract_code() -> None:
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```", "") == \
        "def f():\n    return 1\n"
    assert extract_code("    return 1\n", "def f():\n").startswith("def f():")


@pytest.mark.parametrize(("program", "ok"), [
    ("assert 1 + 1 == 2", True),
    ("assert 1 + 1 == 3", False),
    ("while True: pass", False),  # killed by the time limit
    ("x = bytearray(4 * 1024 ** 3)", False),  # over the memory limit
    ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", False),
    ("import os\nassert not os.environ.get('HOME')", True),  # an empty environment
    # the audit hook: its own directory is writable, nothing else; no processes, no ctypes
    ("open('x', 'w').write('1')\nassert open('x').read() == '1'", True),
    ("import numpy\nassert numpy.arange(3).sum() == 3", True),
    ("open('/tmp/rung-sandbox-escape', 'w')", False),
    ("import os\nos.remove('/tmp/rung-sandbox-absent')", False),
    ("import os\nos.open('/tmp/rung-sandbox-escape', os.O_RDONLY | os.O_CREAT)", False),
    ("import os\nos.mkdir('/tmp/rung-sandbox-dir')", False),
    ("import os\nos.mkdir('d')\nopen('d/x', 'w').write('1')", True),
    ("import subprocess\nsubprocess.run(['true'])", False),
    ("import os\nos.system('true')", False),
    ("import ctypes\nctypes.CDLL(None).system(b'true')", False),
])
def test_sandbox(program: str, ok: bool) -> None:
    assert sandbox_run(program, timeout_s=2) is ok


def test_sandbox_has_no_network_even_to_loopback() -> None:
    with upstream_server() as up:
        port = int(up.url.rsplit(":", 1)[1])
        prog = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        assert sandbox_run(prog, timeout_s=5) is False


def test_humaneval_canonical_solutions_pass() -> None:
    """The harness is right: the reference solutions pass, a wrong one fails."""
    items, _ = datasets.load("humaneval")
    assert len(items) == 164
    raw = gzip.decompress(datasets.humaneval_path().read_bytes()).decode().splitlines()
    canon = {json.loads(r)["task_id"]: json.loads(r)["canonical_solution"] for r in raw}
    for item in items[:5]:
        good = "```python\n" + item.extra["code_prompt"] + canon[item.id] + "```"
        assert is_correct(item, good)
        assert not is_correct(item, "```python\n" + item.extra["code_prompt"] +
                              "    return None\n```")


def _config(tmp: Path, a: str, b: str) -> Path:
    cfg = tmp / "c.toml"
    cfg.write_text(f"""
[[tiers]]
name = "small"
backend = {{ type = "openai", base_url = "{a}/v1", model = "m" }}
cost = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }}
verifiers = [{{ type = "logprob", min_logprob = -1.0 }}]
[[tiers]]
name = "big"
backend = {{ type = "openai", base_url = "{b}/v1", model = "m" }}
cost = {{ input_per_mtok = 10.0, output_per_mtok = 10.0 }}
""")
    return cfg


def test_live_run_outcomes_and_training_on_them(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    lines = [json.loads(line) for line in GSM8K.read_text().splitlines()[:40]]
    refs = {datasets.GSM8K_INSTRUCTION + x["question"]: datasets.gsm8k_reference(x["answer"])
            for x in lines}
    keys = list(refs)
    # the small tier is right on every third item, the big one on all but every fifth
    small = UpstreamBehaviour(reply_fn=lambda q: f"The answer is "
                              f"{refs[q] if keys.index(q) % 3 == 0 else -1}")
    big = UpstreamBehaviour(reply_fn=lambda q: f"The answer is "
                            f"{refs[q] if keys.index(q) % 5 else -1}")
    with upstream_server(small) as a, upstream_server(big) as b:
        cfg = _config(tmp_path, a.url, b.url)
        argv = ["eval", "run", "--config", str(cfg), "--dataset", "gsm8k", "--data",
                str(GSM8K), "--limit", "40", "--tiers", "all", "--policy", "--out", str(out)]
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        rows = (out / "items.jsonl").read_text().splitlines()
        assert len(rows) == 120
        # a torn line (a run killed mid-write) is ignored, and nothing is redone
        with (out / "items.jsonl").open("a") as f:
            f.write('{"item": "gsm8k/0", "tar')
        assert main(argv) == 0
        capsys.readouterr()
        assert len((out / "items.jsonl").read_text().splitlines()) == 121
        # a resumed run keeps the earlier invocation, and says when its settings changed
        assert len(json.loads((out / "manifest.json").read_text())["history"]) == 1
        with caplog.at_level("WARNING", logger="rung.eval"):
            assert main([*argv, "--max-tokens", "64"]) == 0
        capsys.readouterr()
        assert "different max_tokens than before" in caplog.text
    assert summary["small"]["accuracy"] == pytest.approx(14 / 40)
    assert summary["big"]["accuracy"] == pytest.approx(32 / 40)
    assert summary["policy"]["answered_by"] == {"small": 40}  # the upstream gives no logprobs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset_sha256"] and manifest["seed"] == 0 and manifest["machine"]["cpus"]
    table = out / "outcomes"
    assert (table / "gsm8k" / "columns.json").exists()
    model = tmp_path / "r.npz"
    assert main(["router", "train", "--data", str(table), "--benchmark", "gsm8k", "--out",
                 str(model)]) == 0
    assert main(["verify", "train", "--data", str(table), "--benchmark", "gsm8k", "--out",
                 str(tmp_path / "v.npz")]) == 0
    # the same run as a table for another pair of tiers (here: the pair reversed)
    capsys.readouterr()
    assert main(["eval", "outcomes", "--run", str(out), "--tiers", "big,small", "--out",
                 str(tmp_path / "pair")]) == 0
    assert "40 items, weak big, strong small" in capsys.readouterr().out
    pair = load_outcomes(tmp_path / "pair", "gsm8k")
    assert sum(o.weak_correct for o in pair) == 32 and sum(o.strong_correct for o in pair) == 14
    # two runs make one mixed table (here the same run twice: every item is there once)
    assert main(["eval", "outcomes", "--run", str(out), "--run", str(out), "--tiers",
                 "small,big", "--out", str(tmp_path / "mixed")]) == 0
    assert len(load_outcomes(tmp_path / "mixed", "traffic")) == 40
    assert main(["eval", "outcomes", "--run", str(out), "--tiers", "big,huge", "--out",
                 str(tmp_path / "x")]) == 1
    assert "not in the run: huge" in capsys.readouterr().err


@pytest.mark.slow
def test_live_run_on_the_embedded_model(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["eval", "run", "--dataset", "gsm8k", "--data", str(GSM8K), "--limit", "2",
                 "--tiers", "all", "--out", str(out), "--max-tokens", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    s = summary["smollm2-135m"]
    assert s["n"] == 2 and s["completion_tokens"] > 0 and s["tokens_per_s"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models_sha256"]["smollm2-135m"].startswith("b179c952")


@pytest.mark.parametrize(("p_yes", "correct", "acc", "kappa", "auc"), [
    ([0.9, 0.8, 0.1, 0.2], [True, True, False, False], 1.0, 1.0, 1.0),
    ([0.9, 0.8, 0.9, 0.7], [True, True, False, False], 0.5, 0.0, 0.625),
    ([0.1, 0.2, 0.9, 0.8], [True, True, False, False], 0.0, -1.0, 0.0),
])
def test_judge_agreement(p_yes: list[float], correct: list[bool], acc: float, kappa: float,
                         auc: float) -> None:
    from rung.eval.judging import agreement

    a = agreement(p_yes, correct)
    assert (a["accuracy"], a["kappa"], a["auc"]) == (acc, kappa, auc)
    assert agreement([None, 0.9], [True, True])["abstained"] == 1


def test_eval_judge_on_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A judge tier (a loopback upstream that says yes to answers ending in 18) scores a
    run's answers; its agreement with the reference checks is reported."""
    out = tmp_path / "run"
    with upstream_server(UpstreamBehaviour(reply="The answer is 18")) as a, \
            upstream_server(UpstreamBehaviour(reply_fn=lambda q: "yes" if "is 18" in q
                                              else "no")) as j:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f"""
[[tiers]]
name = "small"
backend = {{ type = "openai", base_url = "{a.url}/v1", model = "m" }}
[[tiers]]
name = "judge"
backend = {{ type = "openai", base_url = "{j.url}/v1", model = "m" }}
""")
        assert main(["eval", "run", "--config", str(cfg), "--dataset", "gsm8k", "--data",
                     str(GSM8K), "--limit", "6", "--tiers", "small", "--out", str(out)]) == 0
        capsys.readouterr()
        rubric = tmp_path / "rubric.txt"
        rubric.write_text("Correct means the final number is right.")
        assert main(["eval", "judge", "--config", str(cfg), "--judge", "judge", "--run",
                     str(out), "--rubric", str(rubric), "--out", str(tmp_path / "j.json"),
                     "--parallel", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    a = summary["agreement"]
    # the judge says yes to every answer; only item 0 (18 eggs' worth of dollars) is right
    assert a["n"] == 6 and a["judge_says_correct"] == 1.0
    assert a["reference_correct"] == pytest.approx(1 / 6, abs=1e-3)
    assert a["accuracy"] == pytest.approx(1 / 6, abs=1e-3)


def test_replay_finds_a_cheaper_cascade_when_confidence_is_informative() -> None:
    from rung.eval.replay import replay

    rows = []
    for i in range(40):
        easy = i % 2 == 0  # the small tier is right, and confident, on even items
        rows += [
            {"item": str(i), "target": "s", "correct": easy, "seconds": 1.0,
             "mean_logprob": -0.1 if easy else -2.0},
            {"item": str(i), "target": "b", "correct": True, "seconds": 10.0,
             "mean_logprob": -0.2},
        ]
    out = replay(rows, ["s", "b"], target=0.95)
    c = out["cascade"]
    assert out["n"] == 40 and out["always_largest"]["accuracy"] == 1.0
    assert c["accuracy"] == 1.0 and c["compute_vs_largest"] == pytest.approx(0.6)
    # perfect verifier: small on every item, big on the odd ones; perfect router: each
    # item on one tier only
    assert out["oracle_cascade"]["compute_vs_largest"] == pytest.approx((40 + 200) / 400)
    assert out["oracle_router"]["compute_vs_largest"] == pytest.approx((20 + 200) / 400)
    assert out["oracle_router"]["accuracy"] == 1.0
    # a config's fixed threshold, on every item: -1.0 keeps the confident half only
    fixed = replay(rows, ["s", "b"], thresholds=[-1.0])
    assert fixed["cascade"]["accuracy"] == 1.0
    assert fixed["cascade"]["compute_vs_largest"] == pytest.approx(0.6)
    assert fixed["protocol"].startswith("fixed thresholds")
    with pytest.raises(ValueError):
        replay(rows, ["s", "b"], thresholds=[-1.0, -2.0])


def test_parallel_is_validated_like_the_config(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "run", "--dataset", "gsm8k", "--data", str(GSM8K), "--limit", "1",
            "--tiers", "smollm2-135m", "--out", str(tmp_path / "run")]
    assert main([*argv, "--parallel", "0"]) == 1
    assert "tiers.0.backend.llama.parallel" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_replay_with_the_examples_check_gates_on_the_recorded_code() -> None:
    from rung.eval.replay import replay

    question = "def inc(x):\n    '''\n    >>> inc(1)\n    2\n    '''\n"
    right, wrong = "def inc(x):\n    return x + 1\n", "def inc(x):\n    return x\n"
    rows = []
    for i in range(12):
        ok = i % 3 != 0  # logprobs say nothing: the same on every small answer
        rows += [
            {"item": str(i), "target": "s", "question": question, "seconds": 1.0,
             "answer": right if ok else wrong, "correct": ok, "mean_logprob": -0.5},
            {"item": str(i), "target": "b", "question": question, "seconds": 4.0,
             "answer": right, "correct": True, "mean_logprob": -0.5},
        ]
    by_logprob = replay(rows, ["s", "b"], target=1.0)["cascade"]
    assert by_logprob["accuracy"] == 1.0 and by_logprob["compute_vs_largest"] == 1.25
    by_examples = replay(rows, ["s", "b"], target=1.0, verifier="examples")
    c = by_examples["cascade"]
    assert by_examples["verifier"] == "examples"
    assert c["accuracy"] == 1.0 and c["compute_vs_largest"] == pytest.approx((12 + 16) / 48, abs=1e-4)


def test_replay_with_a_learned_verifier_cuts_on_its_score(tmp_path: Path) -> None:
    from rung.eval.replay import replay
    from rung.routing.data import Outcome
    from rung.verify.learned import train_verifier

    def answer(i: int, right: bool) -> str:
        a, b = i + 2, i + 3
        c = a * b if right else 2 * a * b
        return f"{a} * {b} = {c}. The answer is {c}"

    q = "What is {} times {}?"
    train = [Outcome(prompt=q.format(i + 2, i + 3), weak_correct=i % 2 == 0,
                     strong_correct=True, benchmark="gsm8k",
                     weak_response=answer(i, i % 2 == 0)) for i in range(40)]
    model = tmp_path / "v.npz"
    train_verifier(train).save(model)
    rows = []
    for i in range(100, 120):
        ok = i % 2 == 0
        rows += [
            {"item": str(i), "target": "s", "question": q.format(i + 2, i + 3),
             "answer": answer(i, ok), "correct": ok, "seconds": 1.0, "mean_logprob": -0.5},
            {"item": str(i), "target": "b", "question": "", "answer": "", "correct": True,
             "seconds": 4.0, "mean_logprob": -0.5},
        ]
    by_logprob = replay(rows, ["s", "b"], target=0.9)["cascade"]
    assert by_logprob["compute_vs_largest"] == 1.25  # logprobs say nothing: all escalate
    c = replay(rows, ["s", "b"], target=1.0, verifier="learned",
               verifier_model=str(model))["cascade"]
    # the verifier sees the wrong arithmetic: the wrong half escalates, and a few right
    # answers (thresholds fitted on one half of the items, measured on the other)
    assert c["accuracy"] == 1.0 and 0.75 <= c["compute_vs_largest"] <= 0.95


def test_judge_calibrated_cut_is_chosen_on_the_other_half() -> None:
    from rung.eval.judging import agreement

    # an over-eager judge: P(yes) high for everything, but higher for the right answers
    p_yes = [0.95 if i % 4 == 0 else 0.7 for i in range(40)]
    correct = [i % 4 == 0 for i in range(40)]
    a = agreement(p_yes, correct)
    assert a["accuracy"] == 0.25 and a["judge_says_correct"] == 1.0  # at the 0.5 cut
    c = a["calibrated"]
    assert c["accuracy"] == 1.0 and c["kappa"] == 1.0
    assert all(0.7 < cut <= 0.95 for cut in c["min_yes_per_half"])


@pytest.mark.slow
def test_a_run_reproduced_from_its_manifest(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    first, again = tmp_path / "run", tmp_path / "again"
    assert main(["eval", "run", "--dataset", "gsm8k", "--data", str(GSM8K), "--limit", "2",
                 "--tiers", "smollm2-135m", "--out", str(first), "--max-tokens", "24"]) == 0
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["command"].startswith("rung eval run --dataset gsm8k")
    capsys.readouterr()
    assert main(["eval", "run", "--manifest", str(first / "manifest.json"),
                 "--out", str(again)]) == 0
    assert "reproduced: every target's accuracy is the same" in capsys.readouterr().err
    c = json.loads((again / "reproduction.json").read_text())["smollm2-135m"]
    assert c["n"] == 2 and c["same_text"] == 1.0 and c["same_correctness"] == 1.0
    # the new manifest records the effective command, so it can be re-run in turn
    assert json.loads((again / "manifest.json").read_text())["command"].startswith(
        "rung eval run --dataset gsm8k")
    # other weights than the manifest's: refused before anything runs
    manifest["models_sha256"]["smollm2-135m"] = "0" * 64
    (first / "manifest.json").write_text(json.dumps(manifest))
    assert main(["eval", "run", "--manifest", str(first / "manifest.json"),
                 "--out", str(tmp_path / "third")]) == 1
    assert "cannot reproduce the run" in capsys.readouterr().err
    assert not (tmp_path / "third").exists()
    assert main(["eval", "run", "--manifest", str(first / "manifest.json"),
                 "--out", str(first)]) == 1
    assert main(["eval", "run", "--out", str(tmp_path / "x")]) == 1
    assert "give --dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_a_batched_run_reproduces_token_for_token(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """More items than slots: freed slots are refilled from a full queue in item order, so
    the batches, and with them every answer, do not depend on timing."""
    first = tmp_path / "run"
    assert main(["eval", "run", "--dataset", "gsm8k", "--data", str(GSM8K), "--limit", "10",
                 "--tiers", "smollm2-135m", "--out", str(first), "--max-tokens", "24",
                 "--parallel", "4"]) == 0
    assert main(["eval", "run", "--manifest", str(first / "manifest.json"),
                 "--out", str(tmp_path / "again")]) == 0
    c = json.loads((tmp_path / "again" / "reproduction.json").read_text())["smollm2-135m"]
    assert c["n"] == 10 and c["same_text"] == 1.0
