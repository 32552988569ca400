"""rung.quantize on a tiny real GGUF: llama.cpp's quantizer, the record it leaves, and
the refusal to requantize."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rung.cli.main import main
from rung.errors import ConfigError
from rung.quantize import label, load_record, parse_types, quantize, read_header, sha256_file
from tests.tiny_gguf import write_tiny_gguf

pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-F32.gguf")


def test_header_of_an_unquantized_file(tiny: Path) -> None:
    h = read_header(tiny)
    assert h.file_type == "F32" and not h.quantized
    assert h.values["general.architecture"] == "llama"
    assert len(h.tokenizer_sha256) == 64


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K_M", "Q2_K"])
def test_quantize_records_source_and_type(tiny: Path, tmp_path: Path, qtype: str) -> None:
    rec = quantize(tiny, qtype, tmp_path, threads=1)
    out = Path(rec.path)
    assert out == tmp_path / f"tiny-{qtype}.gguf"  # the source's type left out of the name
    assert read_header(out).file_type == qtype
    assert rec.source_sha256 == sha256_file(tiny) and rec.source_type == "F32"
    assert not rec.requantized and rec.size == out.stat().st_size < tiny.stat().st_size
    assert load_record(out) == rec
    assert json.loads(out.with_name(out.name + ".json").read_text())["type"] == qtype
    assert label(out) == qtype
    assert not list(tmp_path.glob(".*.part"))


def test_requantizing_is_refused_unless_allowed(tiny: Path, tmp_path: Path) -> None:
    q8 = Path(quantize(tiny, "Q8_0", tmp_path / "a", threads=1).path)
    with pytest.raises(ConfigError, match="already quantized \\(Q8_0\\).*--allow-requantize"):
        quantize(q8, "Q4_0", tmp_path / "b")
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())
    rec = quantize(q8, "Q4_0", tmp_path / "b", allow_requantize=True, threads=1)
    assert rec.requantized and rec.source_type == "Q8_0"
    assert label(Path(rec.path)) == "Q4_0 (requantized from Q8_0)"


def test_cli_quantize(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "quantize", str(tiny), "--type", "q8_0,Q4_0",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "tiny-Q8_0.gguf").is_file() and (tmp_path / "tiny-Q4_0.gguf").is_file()
    assert main(["models", "quantize", str(tmp_path / "tiny-Q8_0.gguf"), "--type", "Q4_0",
                 "--out", str(tmp_path / "again")]) == 1
    assert "--allow-requantize" in capsys.readouterr().err


@pytest.mark.parametrize("text,ok", [("Q4_K_M", ["Q4_K_M"]), ("q8_0, q2_k", ["Q8_0", "Q2_K"]),
                                     ("Q9", None), ("", None), ("IQ2_XS", None)])
def test_parse_types(text: str, ok: list[str] | None) -> None:
    if ok is None:
        with pytest.raises(ConfigError):
            parse_types(text)
    else:
        assert parse_types(text) == ok
