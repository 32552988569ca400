"""One-file persistence for learned scorers: a numpy ``.npz`` with a JSON header.

Arrays only, never pickles, so loading a scorer file cannot run code. The header names
the kind of scorer and its format version so a wrong or stale file is refused clearly.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rung.errors import ConfigError

FORMAT_VERSION = 1


def save(path: str | Path, *, kind: str, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` and a JSON header to ``path`` (exactly that name, no suffix added)."""
    header = {"kind": kind, "format": FORMAT_VERSION, **meta}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    target = Path(path)
    savez: Any = np.savez_compressed  # its stub types **kwds as if they could be allow_pickle
    with target.open("wb") as fh:
        savez(fh, allow_pickle=False, **payload)


def load(path: str | Path, *, kind: str) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header and arrays of a scorer file of the given kind; ConfigError otherwise."""
    target = Path(path)
    if not target.is_file():
        raise ConfigError(f"no scorer file at {target}")
    try:
        with np.load(target, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{target} is not a rung scorer file: {exc}") from exc
    raw = arrays.pop("__header__", None)
    if raw is None:
        raise ConfigError(f"{target} is not a rung scorer file (no header)")
    header: dict[str, Any] = json.loads(raw.tobytes().decode("utf-8"))
    if header.get("kind") != kind:
        raise ConfigError(f"{target} holds a {header.get('kind')!r}, expected a {kind!r}")
    if header.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{target} has format {header.get('format')}, expected {FORMAT_VERSION}")
    return header, arrays
