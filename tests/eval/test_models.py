"""rung bench models: KL divergence on a tiny real GGUF and its quantizations, the
candidate parser, the interval and the Pareto front, and the --json output end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rung.cli.main import main
from rung.errors import ConfigError
from rung.eval import kld
from rung.eval.models import display_name, parse_candidate, wilson
from rung.eval.models_report import pareto
from rung.quantize import quantize
from tests.tiny_gguf import write_tiny_gguf

pytest.importorskip("gguf")

TEXT = "the sum 1 + 2 = 3 is the 1 and 2 " * 12


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    f32 = write_tiny_gguf(d / "tiny-F32.gguf")
    out = {"F32": f32}
    for t in ("Q8_0", "Q2_K"):
        out[t] = Path(quantize(f32, t, d, threads=1).path)
    out["other"] = write_tiny_gguf(d / "other.gguf", seed=1)  # same tokenizer, other weights
    return out


def test_kld_is_zero_against_itself_and_grows_with_quantization(
        models: dict[str, Path]) -> None:
    found = kld.compare(models["F32"], [models["F32"], models["Q8_0"], models["Q2_K"],
                                        models["other"]], TEXT, window=64, threads=1)
    same, q8, q2, other = (found[models[k]] for k in ("F32", "Q8_0", "Q2_K", "other"))
    assert isinstance(same, kld.Divergence) and isinstance(q8, kld.Divergence)
    assert isinstance(q2, kld.Divergence) and isinstance(other, kld.Divergence)
    assert same.kld == pytest.approx(0.0, abs=1e-9) and same.top1_agree == 1.0
    assert same.positions == len(kld.tokens_of(models["F32"], TEXT, max_tokens=1024)) > 64
    assert 0.0 < q8.kld < q2.kld < other.kld
    assert q8.top1_agree >= q2.top1_agree


def test_divergence_needs_one_vocabulary() -> None:
    a = kld.log_softmax(np.zeros((3, 5), np.float32)).astype(np.float32)
    b = kld.log_softmax(np.zeros((3, 6), np.float32)).astype(np.float32)
    with pytest.raises(ConfigError, match="vocabularies differ"):
        kld.divergence(a, b)


def test_divergence_by_hand() -> None:
    p = np.log(np.array([[0.5, 0.5], [0.9, 0.1]], np.float32))
    q = np.log(np.array([[0.9, 0.1], [0.9, 0.1]], np.float32))
    d = kld.divergence(p, q)
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert d.kld == pytest.approx(expected / 2, rel=1e-5)
    assert d.top1_agree == 1.0 and d.positions == 2


@pytest.mark.parametrize("text,model,strategy", [
    ("smollm2-135m", "smollm2-135m", None),
    ("/m/x-Q4_0.gguf", "/m/x-Q4_0.gguf", None),
    ("qwen2.5-coder-0.5b+sc8", "qwen2.5-coder-0.5b", "sc8"),
    ("m+cot", "m", "cot"),
])
def test_parse_candidate(text: str, model: str, strategy: str | None) -> None:
    c = parse_candidate(text)
    assert (c.model, c.strategy, c.name) == (model, strategy, text)


@pytest.mark.parametrize("text", ["m+", "+sc8", "m+nonsense"])
def test_parse_candidate_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_candidate(text)


def test_display_name() -> None:
    assert display_name("/a/b/qwen-Q4_0.gguf") == "qwen-Q4_0"
    assert display_name("qwen2.5-coder-0.5b+sc8") == "qwen2.5-coder-0.5b+sc8"


@pytest.mark.parametrize("k,n,lo,hi", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0),
                                       (5, 10, 0.2366, 0.7634)])
def test_wilson(k: int, n: int, lo: float, hi: float) -> None:
    a, b = wilson(k, n)
    assert a == pytest.approx(lo, abs=1e-3) and b == pytest.approx(hi, abs=1e-3)


def test_pareto() -> None:
    pts = [(10.0, 0.5), (20.0, 0.4), (15.0, 0.3), (5.0, 0.6)]
    assert pareto(pts, more_x_better=True) == [3, 0, 1]  # (15, 0.3) is dominated by (20, 0.4)
    assert pareto(pts, more_x_better=False) == [3]  # least memory and most accurate


def test_json_output(models: dict[str, Path], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?",
                                        "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"}) + "\n"
                            for i in range(2)))
    assert main(["bench", "models", "--models", f"{models['F32']},{models['Q2_K']}",
                 "--dataset", "gsm8k", "--data", str(data), "--limit", "2",
                 "--reference", str(models["F32"]), "--max-tokens", "4", "--threads", "1",
                 "--json", "--report", str(tmp_path / "report")]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["models"]
    assert [r["model"] for r in rows] == [str(models["F32"]), str(models["Q2_K"])]
    for r in rows:
        for key in ("model", "accuracy", "ci95", "prompt_tok_s", "gen_tok_s", "ttft_ms",
                    "peak_rss_mb", "file_mb", "load_s", "kld", "top1_agree", "type"):
            assert key in r, key
        assert r["n"] == 2 and 0 < r["peak_rss_mb"] and r["load_s"] > 0
    assert rows[0]["kld"] == 0.0 and rows[0]["top1_agree"] == 1.0 and rows[1]["kld"] > 0
    assert rows[0]["type"] == "F32" and rows[1]["type"] == "Q2_K"
    assert result["items"] == 2 and result["reference"] == str(models["F32"])
    assert (tmp_path / "report" / "models.html").is_file()
    assert (tmp_path / "report" / "models.png").stat().st_size > 1000


@pytest.mark.slow
def test_traffic_judged_by_a_tier(models: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    traces = tmp_path / "traces.jsonl"
    rows = [{"id": "t1", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
             "response": "4"},
            {"id": "t2", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Capital of France?"}],
             "response": "Paris"},
            {"id": "t3", "messages": [{"role": "user", "content": "x"}], "tools": [{}]},
            {"id": "t4", "route": {"endpoint": "embeddings"}, "messages": []}]
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "rung.toml"
    config.write_text('[[tiers]]\nname = "judge"\n[tiers.backend]\ntype = "llama"\n'
                      'model = "smollm2-135m"\n')
    args = ["bench", "models", "--models", str(models["Q8_0"]), "--dataset", str(traces),
            "--max-tokens", "4", "--threads", "1", "--json", "--config", str(config)]
    assert main(args) == 1
    assert "--judge" in capsys.readouterr().err
    assert main([*args, "--judge", "judge"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert row["n"] == 2 and row["judge"] == "judge" and "answers" not in row
    assert 0.0 <= row["accuracy"] <= 1.0 and len(row["ci95"]) == 2


def test_a_strategy_candidate_answers_through_rung_ttc(
        models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "gsm8k.jsonl"
    data.write_text(json.dumps({"question": "What is 1 + 1?", "answer": "#### 2"}) + "\n")
    plain, voted = str(models["Q8_0"]), f"{models['Q8_0']}+sc2fixed"
    assert main(["bench", "models", "--models", f"{plain},{voted}", "--dataset", "gsm8k",
                 "--data", str(data), "--max-tokens", "4", "--threads", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    assert [r["strategy"] for r in rows] == [None, "sc2fixed"]
    # two samples drawn: the answer's usage counts both
    assert rows[1]["completion_tokens"] > rows[0]["completion_tokens"]
    # the vote's answer comes whole: no prompt speed, generation over the whole time
    assert rows[1]["streamed"] == 0 and rows[1]["prompt_tok_s"] is None
    # seconds are rounded to 0.01: a fast answer's rate is known within that rounding
    tokens, seconds = rows[1]["completion_tokens"], rows[1]["seconds"]
    assert tokens / (seconds + 0.005) * 0.99 <= rows[1]["gen_tok_s"] \
        <= tokens / max(seconds - 0.005, 1e-9) * 1.01
    assert rows[1]["prompt_tokens"] >= rows[0]["prompt_tokens"] > 0
