"""The built-in config: a ladder when the stronger small model is installed, the embedded
model alone (said in one line) when it is not or with --minimal."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rung import defaults
from rung.cli.common import config_from
from rung.config import EMBEDDED_MODEL, CatalogConfig
from rung.server.banner import banner
from tests.conftest import REPO


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(config=None, **kw)


def test_installed_looks_for_the_joined_file(tmp_path: Path) -> None:
    catalog = CatalogConfig(cache_dir=tmp_path)
    assert not defaults.installed(defaults.STRONGER, catalog)
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / f"{defaults.STRONGER}.gguf").write_bytes(b"GGUF")
    assert defaults.installed(defaults.STRONGER, catalog)
    assert not defaults.installed(EMBEDDED_MODEL, catalog)  # shipped in a wheel, not installed


def test_the_ladder_when_installed(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(defaults, "installed", lambda name, catalog: True)
    cfg = config_from(args())
    assert [t.name for t in cfg.tiers] == [EMBEDDED_MODEL, defaults.STRONGER]
    assert [v.type for v in cfg.tiers[0].verifiers] == ["arithmetic", "repetition"]
    assert cfg.routing.thresholds == (defaults.START_HIGH,)
    assert capsys.readouterr().err == ""
    assert [t.name for t in config_from(args(minimal=True)).tiers] == [EMBEDDED_MODEL]


def test_alone_and_said_in_one_line_when_not(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(defaults, "installed", lambda name, catalog: False)
    cfg = config_from(args())
    assert [t.name for t in cfg.tiers] == [EMBEDDED_MODEL]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rung models install qwen2.5-coder-0.5b" in err


def test_the_banner_says_where_things_are() -> None:
    cfg = defaults.ladder()
    text = "\n".join(banner(cfg, {EMBEDDED_MODEL: True}))
    assert "http://127.0.0.1:8080/v1" in text and "/dashboard" in text
    assert f"{EMBEDDED_MODEL:<22} loaded" in text
    assert f"{defaults.STRONGER:<22} loading" in text
    assert "traces.db" in text and "API keys:      not required" in text
    assert '/v1/embeddings   model "all-minilm-l6-v2"' in text
    remote = cfg.model_copy(update={"server": cfg.server.model_copy(update={"host": "0.0.0.0"})})
    assert "API keys:      required" in "\n".join(banner(remote, {}))


def test_set_up_without_a_network_says_so_in_one_line(tmp_path: Path) -> None:
    """tasks.py's install of the second tier, with PyPI unreachable (a closed loopback
    port) and an empty model cache: one line, and set-up goes on."""
    env = {**os.environ, "HOME": str(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}
    code = ("import importlib.util,sys; s=importlib.util.spec_from_file_location('t', "
            f"{str(REPO / 'tasks.py')!r}); m=importlib.util.module_from_spec(s); "
            "s.loader.exec_module(m); m.install_stronger()")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("[tasks]")]
    assert lines[-1].startswith("[tasks] could not install qwen2.5-coder-0.5b")
    assert lines[-1].endswith("the built-in config serves smollm2-135m alone")
