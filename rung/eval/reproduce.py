"""Re-running a run from its manifest, and saying whether the numbers came out the same.

``rung eval run --manifest runs/X/manifest.json --out runs/X-again`` takes everything
from the manifest: the config as it was (embedded, not re-read from its file), the
recorded command's dataset, limit, targets, seed, token limit and batching. It refuses to
start when a local model file or the dataset no longer has the sha256 the manifest
recorded (other weights or data cannot reproduce the numbers), then compares the new rows
with the original run's, item by item.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.config import Config, parse_config
from rung.errors import ConfigError

Row = dict[str, Any]


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict) or "command" not in manifest or "config" not in manifest:
        raise ConfigError(f"{path} is not a `rung eval run` manifest")
    return manifest


def recorded_argv(manifest: dict[str, Any]) -> list[str]:
    """The recorded ``rung eval run ...`` arguments, without ``rung`` and ``--out``."""
    argv = shlex.split(manifest["command"])[1:]
    if argv[:2] != ["eval", "run"]:
        raise ConfigError(f"the manifest's command is not `rung eval run`: "
                          f"{manifest['command']}")
    out: list[str] = []
    skip = False
    for a in argv[2:]:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out


def recorded_config(manifest: dict[str, Any]) -> Config:
    return parse_config(manifest["config"])


def check_inputs(manifest: dict[str, Any], *, models: dict[str, str],
                 data_hash: str) -> None:
    """Refuse to re-run on other weights or other data than the manifest's."""
    for tier, digest in manifest.get("models_sha256", {}).items():
        now = models.get(tier)
        if now != digest:
            raise ConfigError(f"tier {tier}: the model file's sha256 is {now}, the manifest "
                              f"recorded {digest}; these weights cannot reproduce the run")
    if manifest.get("dataset_sha256") not in (None, data_hash):
        raise ConfigError(f"the dataset's sha256 is {data_hash}, the manifest recorded "
                          f"{manifest['dataset_sha256']}")


def compare(before: Sequence[Row], after: Sequence[Row]) -> dict[str, Any]:
    """Per target, over the items both runs answered: accuracy before and after, and the
    share of answers whose text and whose correctness are identical."""
    old = {(r["item"], r["target"]): r for r in before}
    out: dict[str, Any] = {}
    for target in sorted({r["target"] for r in after}):
        pairs = [(old[(r["item"], target)], r) for r in after
                 if r["target"] == target and (r["item"], target) in old]
        if not pairs:
            out[target] = {"n": 0}
            continue
        n = len(pairs)
        out[target] = {
            "n": n,
            "accuracy_before": round(sum(bool(a["correct"]) for a, _ in pairs) / n, 4),
            "accuracy_after": round(sum(bool(b["correct"]) for _, b in pairs) / n, 4),
            "same_text": round(sum(a.get("answer") == b.get("answer") for a, b in pairs) / n, 4),
            "same_correctness": round(sum(bool(a["correct"]) == bool(b["correct"])
                                          for a, b in pairs) / n, 4),
        }
    return out


def reproduced(comparison: dict[str, Any]) -> bool:
    """Every compared target kept its accuracy."""
    return all(c.get("n", 0) == 0 or c["accuracy_before"] == c["accuracy_after"]
               for c in comparison.values())
