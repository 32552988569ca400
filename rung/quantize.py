"""Quantizing a GGUF with llama.cpp's own quantizer, and what a GGUF says about itself.

``quantize`` runs ``llama_model_quantize`` from llama-cpp-python (the code behind
``llama-quantize``) and writes, beside each output, a ``.json`` record: the source's
path, sha256 and type, the type made, and whether the source was already quantized.
Quantizing a quantized file (requantizing) loses more than quantizing its unquantized
original would, so it is refused unless asked for, and the record says so: every report
that shows such a file labels it (:func:`label`).

``read_header`` reads a GGUF's key-value header in plain Python (no model load), enough
for the file type and a fingerprint of the tokenizer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from rung.catalog import sha256_file
from rung.errors import ConfigError, ModelSourceError

# llama.h's enum llama_ftype (stable numbers; 4-6 were removed upstream).
FTYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}
UNQUANTIZED = frozenset({"F32", "F16", "BF16"})
# Types the quantizer makes without an importance matrix (the IQ types need one).
TYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q4_0",
         "Q4_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "F16", "BF16")

_GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class Header:
    """A GGUF's metadata: its scalar and string values (arrays summarised by length),
    and the sha256 of its tokenizer's token list."""

    values: dict[str, Any]
    tokenizer_sha256: str

    @property
    def file_type(self) -> str:
        """The type most of its tensors have (``general.file_type``), e.g. ``Q4_K_M``."""
        ft = self.values.get("general.file_type")
        if ft is None:
            return "F32"  # llama.cpp's own default when the key is missing
        return FTYPES.get(int(ft), f"ftype {ft}")

    @property
    def quantized(self) -> bool:
        return self.file_type not in UNQUANTIZED


def _read(f: IO[bytes], fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelSourceError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _string(f: IO[bytes]) -> str:
    n = _read(f, "<Q")
    return f.read(n).decode("utf-8", errors="replace")


def _value(f: IO[bytes], vtype: int, digest: Any = None) -> Any:
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        itype, n = _read(f, "<I"), _read(f, "<Q")
        if itype in _SCALARS:  # skip in one read
            data = f.read(struct.calcsize(_SCALARS[itype]) * n)
            if digest is not None:
                digest.update(data)
        else:
            for _ in range(n):
                item = _value(f, itype)
                if digest is not None:
                    digest.update(str(item).encode() + b"\0")
        return f"[{n} items]"
    raise ModelSourceError(f"unknown GGUF value type {vtype}")


def read_header(path: Path) -> Header:
    """The metadata of a GGUF file, read without loading the model."""
    digest = hashlib.sha256()
    values: dict[str, Any] = {}
    try:
        with path.open("rb") as f:
            if f.read(4) != _GGUF_MAGIC:
                raise ModelSourceError(f"{path}: not a GGUF file")
            _read(f, "<I")  # version
            _read(f, "<Q")  # tensors
            for _ in range(_read(f, "<Q")):
                key = _string(f)
                vtype = _read(f, "<I")
                tokens = key == "tokenizer.ggml.tokens"
                values[key] = _value(f, vtype, digest if tokens else None)
    except OSError as exc:
        raise ModelSourceError(f"cannot read {path}: {exc}") from exc
    return Header(values=values, tokenizer_sha256=digest.hexdigest())


@dataclass(frozen=True)
class Record:
    """What ``quantize`` made from what (written beside the output as ``<file>.json``)."""

    path: str
    type: str
    source: str
    source_sha256: str
    source_type: str
    requantized: bool
    sha256: str
    size: int
    seconds: float


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def load_record(path: Path) -> Record | None:
    """The record written when ``path`` was quantized by rung, if any."""
    try:
        return Record(**json.loads(record_path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def label(path: Path) -> str:
    """A file's type as reports show it; a requantized file says from what, e.g.
    ``Q3_K_M (requantized from Q4_K_M)``."""
    rec = load_record(path)
    if rec is not None:
        return (f"{rec.type} (requantized from {rec.source_type})" if rec.requantized
                else rec.type)
    return read_header(path).file_type


def parse_types(text: str) -> list[str]:
    types = [t.strip().upper() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in TYPES]
    if unknown or not types:
        raise ConfigError(f"unknown quantization type(s) {', '.join(unknown) or text!r}; "
                          f"known: {', '.join(TYPES)}")
    return types


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quantize(src: Path, qtype: str, out_dir: Path, *, allow_requantize: bool = False,
             threads: int | None = None) -> Record:
    """Quantize ``src`` to ``qtype`` into ``out_dir/<stem>-<qtype>.gguf`` (atomically),
    and record it. A quantized source is refused unless ``allow_requantize``."""
    header = read_header(src)
    if header.quantized and not allow_requantize:
        raise ConfigError(
            f"{src.name} is already quantized ({header.file_type}); quantizing it again "
            "loses more than quantizing its F16/BF16 original would. Pass "
            "--allow-requantize to do it anyway (reports label the result).")
    import llama_cpp  # heavy: imported where used

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}", None)
    if ftype is None:
        raise ConfigError(f"this llama-cpp-python has no quantization type {qtype}")
    stem = src.stem
    for suffix in (f"-{header.file_type}", f".{header.file_type}", f"_{header.file_type}"):
        stem = stem.removesuffix(suffix).removesuffix(suffix.lower())
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{stem}-{qtype}.gguf"
    tmp = out_dir / f".{dest.name}.part"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or (os.cpu_count() or 1)
    params.allow_requantize = allow_requantize
    t0 = time.perf_counter()
    try:
        with _quiet_stderr():  # llama.cpp logs a line per tensor
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise ModelSourceError(f"llama.cpp could not quantize {src} to {qtype} "
                                   f"(status {rc})")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    rec = Record(path=str(dest), type=qtype, source=str(src), source_sha256=sha256_file(src),
                 source_type=header.file_type, requantized=header.quantized,
                 sha256=sha256_file(dest), size=dest.stat().st_size,
                 seconds=round(time.perf_counter() - t0, 2))
    record_path(dest).write_text(json.dumps(asdict(rec), indent=2) + "\n")
    return rec
